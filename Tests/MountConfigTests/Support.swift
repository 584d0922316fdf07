import Testing

@testable import MountConfig

/// The example from the design: one link of each kind, with top-level defaults.
let exampleYAML = """
    # /etc/lakecache/lake.yaml
    cache-dir: /nvme/lakecache
    cache-size: 200G
    memory-cache: 8G
    write-mode: async          # default for links
    metadata-ttl: 60
    links:
      - path: datasets/imagenet
        url: s3://datasets/imagenet/
        read-only: true
        metadata-ttl: indefinite
        metadata: listing
        include: ["train/**", "val/**"]
        exclude: ["**/*.tmp"]
        import: preload
      - path: checkpoints
        url: s3://ckpt-bucket/run42
        write-mode: async
        sync-interval: 5m
      - path: models
        url: s3://models
        endpoint: http://minio.internal:9000
        region: us-east-1
        profile: onprem
        no-sign-request: false
        addressing-style: path
        read-only: true
        negative-ttl: 5

    """

/// A file with `top` lines before one link whose fields are `link` (indented for the list).
func file(top: String = "", link: String = "") -> String {
    var text = top.isEmpty ? "" : top + "\n"
    text += "links:\n  - path: data\n    url: s3://bucket-a/prefix\n"
    for line in link.split(separator: "\n") { text += "    \(line)\n" }
    return text
}

/// Parses `text` as lake.yaml; records an issue if it fails.
func parsed(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> MountConfig? {
    do {
        return try MountConfig.parse(text, file: "lake.yaml")
    } catch {
        Issue.record("unexpected refusal: \(error.message)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The message refusing `text` as lake.yaml; records an issue if it parses, or if the message is not one
/// line starting with `lake.yaml:<line>:` and containing every fragment.
@discardableResult
func refusal(_ text: String, line: Int, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation) -> String {
    let message: String
    do {
        let config = try MountConfig.parse(text, file: "lake.yaml")
        Issue.record("expected a refusal, parsed \(config.links.count) links", sourceLocation: sourceLocation)
        return ""
    } catch {
        message = error.message
    }
    #expect(message.hasPrefix("lake.yaml:\(line):"), "\(message)", sourceLocation: sourceLocation)
    #expect(!message.contains("\n"), "\(message)", sourceLocation: sourceLocation)
    #expect(message.contains("; "), "no fix in: \(message)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(message.contains(fragment), "'\(fragment)' not in: \(message)", sourceLocation: sourceLocation)
    }
    return message
}
