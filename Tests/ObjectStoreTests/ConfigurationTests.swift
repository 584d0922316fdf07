import Foundation
import Testing

import Platform
@testable import ObjectStore

@Suite struct EndpointTests {
    @Test func parsesHostsAndPorts() throws {
        #expect(try Endpoint(parsing: "http://127.0.0.1:9000") == Endpoint(scheme: "http", host: "127.0.0.1", port: 9000))
        #expect(try Endpoint(parsing: "https://s3.eu-west-1.amazonaws.com/") == Endpoint(scheme: "https", host: "s3.eu-west-1.amazonaws.com"))
        #expect(try Endpoint(parsing: "http://[::1]:8080") == Endpoint(scheme: "http", host: "[::1]", port: 8080))
        #expect(try Endpoint(parsing: "https://minio:443").hostHeader() == "minio")
        #expect(try Endpoint(parsing: "http://minio:9000").hostHeader() == "minio:9000")
    }

    @Test(arguments: ["127.0.0.1:9000", "ftp://x", "http://", "http://h:99999", "http://h:abc", "http://u:p@h", "http://h/path", "http://h?x=1"])
    func rejectsBadURLsWithAClearMessage(_ text: String) {
        do {
            _ = try Endpoint(parsing: text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.kind == .configuration)
            #expect(error.message.contains(text))
        }
    }
}

@Suite struct ResolutionTests {
    let creds = ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET"]

    @Test func endpointOrder() throws {
        var env = creds
        #expect(try S3Configuration.resolve(endpoint: nil, region: nil, profile: nil, anonymous: false, environment: env).endpoint.host == "s3.us-east-1.amazonaws.com")
        env["AWS_ENDPOINT_URL"] = "http://generic:1"
        #expect(try S3Configuration.resolve(endpoint: nil, region: nil, profile: nil, anonymous: false, environment: env).endpoint.host == "generic")
        env["AWS_ENDPOINT_URL_S3"] = "http://s3specific:2"
        #expect(try S3Configuration.resolve(endpoint: nil, region: nil, profile: nil, anonymous: false, environment: env).endpoint.host == "s3specific")
        #expect(try S3Configuration.resolve(endpoint: "http://flag:3", region: nil, profile: nil, anonymous: false, environment: env).endpoint.host == "flag")
    }

    @Test func regionOrder() throws {
        var env = creds
        #expect(try S3Configuration.resolve(endpoint: nil, region: nil, profile: nil, anonymous: false, environment: env).region == "us-east-1")
        env["AWS_DEFAULT_REGION"] = "eu-west-2"
        #expect(try S3Configuration.resolve(endpoint: nil, region: nil, profile: nil, anonymous: false, environment: env).region == "eu-west-2")
        env["AWS_REGION"] = "ap-south-1"
        let c = try S3Configuration.resolve(endpoint: nil, region: nil, profile: nil, anonymous: false, environment: env)
        #expect(c.region == "ap-south-1" && c.endpoint.host == "s3.ap-south-1.amazonaws.com")
        #expect(try S3Configuration.resolve(endpoint: nil, region: "us-west-1", profile: nil, anonymous: false, environment: env).region == "us-west-1")
    }

    @Test func anonymousHasNoCredentials() throws {
        #expect(try S3Configuration.resolve(endpoint: nil, region: nil, profile: nil, anonymous: true, environment: [:]).credentials == nil)
    }

    @Test func missingCredentialsExplainTheFix() {
        do {
            _ = try S3Configuration.resolve(endpoint: nil, region: nil, profile: nil, anonymous: false, environment: ["HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"])
            Issue.record("resolved without credentials")
        } catch {
            #expect(error.message.contains("AWS_ACCESS_KEY_ID"))
            #expect(error.message.contains("--no-sign-request"))
            // Every source of the chain is named with the reason it did not apply.
            for source in ["environment variables", "web identity", "/nonexistent/.aws/credentials", "container endpoint", "AWS_EC2_METADATA_DISABLED"] {
                #expect(error.message.contains(source), "\(source) in: \(error.message)")
            }
        }
    }

    @Test func unreadableCABundleIsAnError() {
        var env = creds
        env["AWS_CA_BUNDLE"] = "/nonexistent/ca.pem"
        #expect(throws: ObjectStoreError.self) {
            try S3Configuration.resolve(endpoint: nil, region: nil, profile: nil, anonymous: false, environment: env)
        }
    }

    @Test func secretsNeverPrint() {
        let c = Credentials(accessKeyID: "AKID", secretAccessKey: "supersecret", sessionToken: "sessiontoken")
        #expect(!"\(c)".contains("supersecret"))
        #expect(!"\(c)".contains("sessiontoken"))
        #expect("\(c)".contains("AKID"))
    }

    @Test func virtualHostingOnlyForSafeBucketsOnAWS() {
        var config = S3Configuration(endpoint: Endpoint(scheme: "https", host: "s3.us-east-1.amazonaws.com"), region: "us-east-1", credentials: nil)
        #expect(S3RequestBuilder(configuration: config).useVirtualHost(bucket: "my-bucket"))
        #expect(!S3RequestBuilder(configuration: config).useVirtualHost(bucket: "my.bucket"))
        config.endpoint = Endpoint(scheme: "http", host: "127.0.0.1", port: 9000)
        #expect(!S3RequestBuilder(configuration: config).useVirtualHost(bucket: "my-bucket"))
        let r = S3RequestBuilder(configuration: config).makeRequest(S3Operation(operation: .getObject, method: "GET", bucket: "b", key: "a/../x y"), time: 0)
        #expect(r.url == "http://127.0.0.1:9000/b/a/../x%20y")
        #expect(!r.headers.contains { $0.name == "Authorization" })
    }
}

@Suite struct PrimitiveTests {
    @Test func digests() {
        #expect(Digest.hex(Digest.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.hex(Digest.md5([UInt8]())) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(Digest.base64(Digest.md5([UInt8]())) == "1B2M2Y8AsgTpgAmY7PhCfg==")
        // RFC 4231 test case 2.
        #expect(Digest.hex(Digest.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(Digest.base64(Array("f".utf8)) == "Zg==" && Digest.base64(Array("fo".utf8)) == "Zm8=" && Digest.base64(Array("foo".utf8)) == "Zm9v")
        let inc = IncrementalDigest(.sha256)
        Array("a".utf8).withUnsafeBytes { inc.update($0) }
        Array("bc".utf8).withUnsafeBytes { inc.update($0) }
        #expect(Digest.hex(inc.finalize()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func timestamps() {
        #expect(Timestamp(iso8601: "2009-10-12T17:50:30.000Z") == Timestamp(seconds: 1_255_369_830))
        #expect(Timestamp(iso8601: "2009-10-12T17:50:30Z") == Timestamp(seconds: 1_255_369_830))
        #expect(Timestamp(httpDate: "Mon, 12 Oct 2009 17:50:30 GMT") == Timestamp(seconds: 1_255_369_830))
        #expect(Timestamp(iso8601: "garbage") == nil)
        // Fractions: nanoseconds kept, digits past nine cut (a long fraction once trapped, found by fuzzing).
        #expect(Timestamp(iso8601: "2009-10-12T17:50:30.5Z") == Timestamp(seconds: 1_255_369_830, nanoseconds: 500_000_000))
        #expect(Timestamp(iso8601: "2009-10-12T17:50:30.123456789123456789Z") == Timestamp(seconds: 1_255_369_830, nanoseconds: 123_456_789))
        #expect(Timestamp(httpDate: "Mon, 12 Foo 2009 17:50:30 GMT") == nil)
        #expect(SigV4Signer.timestamps(1_369_353_600) == ("20130524T000000Z", "20130524"))
    }

    @Test func uriEncoding() {
        #expect(URIEncoding.encode("a b/c~d+é", keepSlash: true) == "a%20b/c~d%2Bé".replacingOccurrences(of: "é", with: "%C3%A9"))
        #expect(URIEncoding.encode("a/b") == "a%2Fb")
        #expect(URIEncoding.decode("a%20b+c", plusIsSpace: true) == "a b c")
        #expect(URIEncoding.decode("bad%zz") == nil)
    }

    @Test func contentRange() {
        #expect(S3Client.parseContentRange("bytes 0-9/100")! == (0, 9, 100))
        #expect(S3Client.parseContentRange("bytes 9-0/100") == nil)
        #expect(S3Client.parseContentRange("bytes 0-100/100") == nil)
        #expect(S3Client.parseContentRange("bytes */100") == nil)
    }
}

@Suite struct BucketURLTests {
    @Test func parsesBucketsAndPrefixes() throws {
        #expect(try BucketURL(parsing: "s3://data") == BucketURL(bucket: "data", prefix: ""))
        #expect(try BucketURL(parsing: "s3://data/") == BucketURL(bucket: "data", prefix: ""))
        #expect(try BucketURL(parsing: "s3://data/train/shards") == BucketURL(bucket: "data", prefix: "train/shards/"))
        #expect(try BucketURL(parsing: "s3://my.bucket-1/a b/") == BucketURL(bucket: "my.bucket-1", prefix: "a b/"))
    }

    @Test(arguments: ["data", "http://data", "s3://", "s3:///x", "s3://ab", "s3://Upper", "s3://-dash", "s3://a..b", "s3://x_y_", "s3://data/a//b", "s3://\(String(repeating: "a", count: 64))"])
    func rejectsWithAMessageThatNamesTheInput(_ text: String) {
        do {
            _ = try BucketURL(parsing: text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.kind == .configuration)
            #expect(error.message.hasPrefix("invalid bucket"))
        }
    }
}
