import ObjectStore
import Platform
import Synchronization
import WriteBack

/// Files written through this mount, by namespace path: their staged image is the truth until evicted.
final class StagedOverlay: Sendable {
    struct State {
        /// By path; changed only through `put` and `remove`, which keep the indexes below in step.
        private(set) var files: [String: StagedFile] = [:]
        /// The path of each staged file (uploads and evictions name the file, not the path).
        private var paths: [ObjectIdentifier: String] = [:]
        /// Names of staged files by parent directory: a small read asks this for its directory.
        private var names: [String: Set<String>] = [:]
        /// Unlinked while open for reading: the object is deleted at the last release (POSIX keeps it
        /// readable). Inode → (link, key), since the path may name something else by then.
        var deferredDeletes: [UInt64: (link: Link, key: String)] = [:]

        /// Stages `f` at `path`; returns what was staged there before.
        @discardableResult
        mutating func put(_ path: String, _ f: StagedFile) -> StagedFile? {
            let old = remove(path)
            if let elsewhere = paths[ObjectIdentifier(f)] { remove(elsewhere) }
            files[path] = f
            paths[ObjectIdentifier(f)] = path
            let (dir, name) = Namespace.split(path)
            names[dir, default: []].insert(name)
            return old
        }

        /// Unstages `path`; returns the file that was there.
        @discardableResult
        mutating func remove(_ path: String) -> StagedFile? {
            guard let f = files.removeValue(forKey: path) else { return nil }
            paths.removeValue(forKey: ObjectIdentifier(f))
            let (dir, name) = Namespace.split(path)
            names[dir]?.remove(name)
            if names[dir]?.isEmpty == true { names.removeValue(forKey: dir) }
            return f
        }

        /// Staged files directly inside directory `dir`.
        func children(of dir: String) -> [(String, StagedFile)] {
            (names[dir] ?? []).compactMap { name in files[Namespace.join(dir, name)].map { (name, $0) } }
        }

        /// Names staged directly inside `dir`.
        func childNames(of dir: String) -> Set<String> { names[dir] ?? [] }

        /// Staged files anywhere below `dir` ("" is the whole namespace).
        func descendants(of dir: String) -> [(String, StagedFile)] {
            let prefix = dir.isEmpty ? "" : dir + "/"
            return files.filter { $0.key.hasPrefix(prefix) }.map { ($0.key, $0.value) }
        }

        /// The path a staged file is at now, if any (a rename or unlink moves or drops it).
        func path(of f: StagedFile) -> String? { paths[ObjectIdentifier(f)] }
    }

    private let state = Locked(State())

    func withLock<R>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }

    subscript(path: String) -> StagedFile? { state.withLock { $0.files[path] } }
}
