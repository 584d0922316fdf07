import ObjectStore
import Platform
import Yams

/// What a `lakecache mount --config FILE` file says (placeholder; see the helper's work).
package struct MountConfig: Sendable, Equatable {}
