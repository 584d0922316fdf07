import Platform

/// The lakecache release, shown by `--version` and sent in the User-Agent.
package enum LakeCacheVersion {
    package static let current = "0.1.0"
}
