import ExtrasBase64
import Platform
import CCrypto

/// Hash and MAC helpers over libcrypto, plus the hex and base64 encodings S3 headers need.
package enum Digest {
    /// SHA-256 of `bytes`.
    package static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { sha256($0) }
    }

    /// SHA-256 of raw memory.
    package static func sha256(_ src: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        do {
            out.withUnsafeMutableBufferPointer { dst in
                precondition(CCrypto_sha256(src.baseAddress, src.count, dst.baseAddress) == 1, "libcrypto SHA-256 failed")
            }
        }
        return out
    }

    /// MD5 of `bytes`; S3 uses it for Content-MD5 and single-part ETags.
    package static func md5(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { md5($0) }
    }

    /// MD5 of raw memory.
    package static func md5(_ src: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        do {
            out.withUnsafeMutableBufferPointer { dst in
                precondition(CCrypto_md5(src.baseAddress, src.count, dst.baseAddress) == 1, "libcrypto MD5 failed")
            }
        }
        return out
    }

    /// HMAC-SHA256 of `message` under `key`.
    package static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                out.withUnsafeMutableBufferPointer { dst in
                    precondition(
                        CCrypto_hmac_sha256(k.baseAddress, k.count, m.baseAddress, m.count, dst.baseAddress) == 1,
                        "libcrypto HMAC failed")
                }
            }
        }
        return out
    }

    /// Lower-case hexadecimal, as SigV4 wants it.
    package static func hex(_ bytes: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes a hexadecimal string spells (either case), or nil if it is not hexadecimal of even length.
    package static func bytes(hex: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(hex.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = URIEncoding.hexValue(utf8[i]), let lo = URIEncoding.hexValue(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    /// An ETag without the double quotes S3 puts around it.
    package static func unquoted(_ etag: String) -> Substring {
        var e = Substring(etag)
        while e.hasPrefix("\"") { e = e.dropFirst() }
        while e.hasSuffix("\"") { e = e.dropLast() }
        return e
    }

    /// The ETag S3 gives an object completed from parts with these MD5s, concatenated: the MD5 of them, then
    /// `-N`.
    package static func multipartETag(partMD5s: [UInt8], parts: Int) -> String {
        hex(md5(partMD5s)) + "-\(parts)"
    }

    /// Standard base64 with padding (Content-MD5).
    package static func base64(_ bytes: [UInt8]) -> String { Base64.encodeToString(bytes: bytes) }

    /// SHA-256 of the empty string, the payload hash of a bodiless request.
    package static let emptySHA256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}

/// An incremental SHA-256 or MD5, for hashing a part read from a file in chunks.
package final class IncrementalDigest {
    package enum Algorithm: Int32 { case sha256 = 0, md5 = 1 }
    private let handle: OpaquePointer

    package init(_ algorithm: Algorithm) {
        guard let h = CCrypto_digest_new(algorithm.rawValue) else { fatalError("libcrypto could not allocate a digest") }
        handle = h
    }

    deinit { CCrypto_digest_free(handle) }

    package func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        precondition(CCrypto_digest_update(handle, bytes.baseAddress, bytes.count) == 1, "libcrypto digest update failed")
    }

    /// Returns the digest and resets the context.
    package func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        let n = out.withUnsafeMutableBufferPointer { CCrypto_digest_final(handle, $0.baseAddress) }
        precondition(n > 0, "libcrypto digest final failed")
        return Array(out.prefix(Int(n)))
    }
}

extension Digest {
    /// MD5 of a byte range of an open file (a part's ETag), or nil if it cannot be read whole.
    package static func md5(file fd: Int32, offset: Int64, length: Int64) -> [UInt8]? {
        try? S3RequestBuilder.hashFile(fd: fd, offset: offset, length: length, .md5)
    }
}
