import ObjectStore
import Platform

/// How one link treats its data: an immutable dataset cached forever, a checkpoint area written
/// asynchronously, a shared model area read-only.
package struct LinkPolicy: Sendable, Equatable {
    package var readOnly = false
    /// close() waits for the upload (sync) or returns once the bytes are staged and journaled (async).
    package var syncClose = false
    /// How long listings and attributes are trusted, in seconds; nil is indefinite (immutable data).
    package var metadataTTL: Double? = 60
    /// How long a name known not to exist stays unknown; nil is indefinite.
    package var negativeTTL: Double? = 60
    /// Keys shown and fetched: listing, lookup, sync, preload and warmup all apply it.
    package var filter = KeyFilter()
    /// Where a listed file's type, mode and owner come from.
    package var metadata: MetadataPolicy = .exact
    /// `preload`: the whole listing at mount, and the data into the disk tier in the background.
    package var preload = false
    /// `on-create: preload`: an object-store event announcing a new object fills it into the disk tier.
    package var preloadOnCreate = false
    /// Seconds between background syncs of the link; nil for none.
    package var syncInterval: Double?

    package init() {}

    /// The TTL handed to the kernel: indefinite becomes a year.
    package var kernelTTL: Double { metadataTTL ?? 365 * 86400 }
}
