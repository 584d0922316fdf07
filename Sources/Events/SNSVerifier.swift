import ExtrasBase64
import CCrypto
import Logging
import ObjectStore
import Platform
import Synchronization

/// Checks the signature of SNS deliveries against the certificate SNS names, fetched over verified TLS
/// from an `sns.REGION.amazonaws.com` host.
package final class SNSVerifier: Sendable {
    /// `--events-sns-verify`.
    package enum Mode: String, Sendable, CaseIterable {
        /// Refuse a message whose certificate cannot be fetched.
        case required
        /// Verify when the certificate can be fetched; accept (counted, logged once) when it cannot, as in
        /// a network with no route to AWS. A bad signature is always refused.
        case whenReachable = "when-reachable"
        /// Trust the token alone.
        case off
    }

    /// What the check found.
    package enum Verdict: Sendable, Equatable {
        case verified
        /// The certificate could not be had; why.
        case unverifiable(String)
        /// The message is not what SNS signed, or its certificate is not from SNS; why.
        case invalid(String)
    }

    package let mode: Mode
    private let transport: CurlTransport
    /// A certificate URL prefix trusted besides SNS's hosts (a test's local server).
    private let extraPrefix: String?
    private let certificates = Locked<[String: [UInt8]]>([:])

    package init(mode: Mode, transport: CurlTransport, trustedCertificatePrefix: String? = nil) {
        self.mode = mode
        self.transport = transport
        // Only a whole origin and path (ending in '/'): "http://localhost" would also trust localhost.evil.example.
        extraPrefix = trustedCertificatePrefix.flatMap { $0.hasSuffix("/") && $0.contains("://") ? $0 : nil }
    }

    /// Whether `url` may name an SNS signing certificate: HTTPS on `sns.REGION.amazonaws.com` (or `.com.cn`),
    /// a `.pem` path.
    package func isTrusted(certificateURL url: String) -> Bool {
        if let extraPrefix, url.hasPrefix(extraPrefix) { return true }
        guard url.hasPrefix("https://") else { return false }
        let rest = url.dropFirst("https://".count)
        guard let slash = rest.firstIndex(of: "/") else { return false }
        let host = rest[..<slash]
        let path = rest[slash...]
        guard path.hasSuffix(".pem"), !host.contains(":"), !host.contains("@") else { return false }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let region = labels.count > 1 ? labels[1] : ""
        let aws = labels.count == 4 && labels[2...] == ["amazonaws", "com"]
        let china = labels.count == 5 && labels[2...] == ["amazonaws", "com", "cn"]
        let regionOK = !region.isEmpty && region.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") }
        guard labels.first == "sns", aws || china, regionOK else { return false }
        return true
    }

    /// Verifies the envelope's signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA).
    package func verify(_ e: SNSEnvelope) async -> Verdict {
        if mode == .off { return .verified }
        guard isTrusted(certificateURL: e.signingCertURL) else {
            return .invalid("SigningCertURL \(e.signingCertURL) is not an SNS certificate (https://sns.REGION.amazonaws.com/....pem)")
        }
        guard e.signatureVersion == "1" || e.signatureVersion == "2" else { return .invalid("unknown SignatureVersion \(e.signatureVersion)") }
        guard let signature = try? Base64.decode(string: e.signature), !signature.isEmpty else { return .invalid("the Signature is not base64") }
        let pem: [UInt8]
        switch await certificate(e.signingCertURL) {
        case .success(let p): pem = p
        case .failure(let why): return .unverifiable(why.message)
        }
        let text = Array(e.stringToSign.utf8)
        let rc = pem.withUnsafeBufferPointer { p in
            text.withUnsafeBytes { t in
                signature.withUnsafeBufferPointer { s in
                    p.withMemoryRebound(to: CChar.self) { c in
                        CCrypto_verify_with_certificate(c.baseAddress, c.count, e.signatureVersion == "2" ? 1 : 0, t.baseAddress, t.count, s.baseAddress, s.count)
                    }
                }
            }
        }
        switch rc {
        case 1: return .verified
        case 0: return .invalid("the signature does not match the message: not sent by SNS, or altered")
        default: return .invalid("the signing certificate at \(e.signingCertURL) cannot be read")
        }
    }

    private func certificate(_ url: String) async -> Result<[UInt8], SystemError> {
        if let cached = certificates.withLock({ $0[url] }) { return .success(cached) }
        let request = HTTPRequest(method: "GET", url: url, headers: [])
        let result: Result<HTTPResponse, TransportFailure> = await withCheckedContinuation { c in
            transport.submit(request, sink: .collect(limit: 1 << 16)) { c.resume(returning: $0) }
        }
        switch result {
        case .success(let r) where r.status == 200:
            certificates.withLock { $0[url] = r.body }
            return .success(r.body)
        case .success(let r):
            return .failure(SystemError("fetching the SNS certificate \(url) answered HTTP \(r.status)"))
        case .failure(let f):
            return .failure(SystemError("cannot fetch the SNS certificate \(url): \(f)"))
        }
    }

    /// Visits a SubscriptionConfirmation's SubscribeURL (an HTTPS GET on the SNS host), which confirms it.
    package func confirm(_ e: SNSEnvelope) async -> Result<Void, SystemError> {
        guard let url = e.subscribeURL else { return .failure(SystemError("no SubscribeURL")) }
        let host = url.hasPrefix("https://") ? String(url.dropFirst(8).prefix { $0 != "/" }) : ""
        guard isTrusted(certificateURL: "https://\(host)/x.pem") || (extraPrefix.map { url.hasPrefix($0) } ?? false) else {
            return .failure(SystemError("SubscribeURL is not on an SNS host"))
        }
        let result: Result<HTTPResponse, TransportFailure> = await withCheckedContinuation { c in
            transport.submit(HTTPRequest(method: "GET", url: url, headers: []), sink: .collect(limit: 1 << 16)) { c.resume(returning: $0) }
        }
        switch result {
        case .success(let r) where r.status == 200: return .success(())
        case .success(let r): return .failure(SystemError("SNS answered HTTP \(r.status)"))
        case .failure(let f): return .failure(SystemError("\(f)"))
        }
    }
}
