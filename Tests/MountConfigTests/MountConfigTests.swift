import Testing

@testable import MountConfig

@Suite struct MountConfigTests {}
