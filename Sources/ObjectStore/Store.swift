import Platform

/// An object store that links read from and write to, with the name that identifies it across restarts.
///
/// Cached blocks and journal records carry the name, so two stores that both have a bucket `data` (AWS and an
/// on-premises cluster, say) never share a block or an upload. The store of a one-URL mount is named "",
/// which keeps its block ids and journal records what they were before links existed.
package final class Store: Sendable, CustomStringConvertible {
    /// "" for the store of a one-URL mount; otherwise a canonical form of its endpoint, region and identity.
    package let name: String
    package let client: any ObjectStore

    package init(name: String, client: any ObjectStore) {
        self.name = name
        self.client = client
    }

    package var description: String { name.isEmpty ? "the mount's store" : name }
}
