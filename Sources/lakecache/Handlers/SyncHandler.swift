import Control
import Filesystem

/// `sync PATH…`: re-lists the links under each path and makes the mount agree with the bucket.
enum SyncHandler {
    static func sync(_ p: MountDaemon.Parts, paths: [String]) -> String {
        let result: Result<SyncReport, FilesystemError> = ControlHandlers.wait {
            var total = SyncReport()
            let started = monotonicSeconds()
            for path in paths.isEmpty ? [""] : paths {
                do {
                    let r = try await p.filesystem.sync(path: path.trimmingSlashes())
                    total.add(r)
                    for link in r.links { p.background.recordSync(link, r) }
                } catch let e as FilesystemError {
                    return .failure(e)
                } catch {
                    return .failure(FilesystemError(EIO, "\(error)"))
                }
            }
            total.seconds = monotonicSeconds() - started
            return .success(total)
        }
        switch result {
        case .failure(let e): return ControlHandlers.error(e.message)
        case .success(let r): return encode(r).encoded()
        }
    }

    static func encode(_ r: SyncReport) -> JSONValue {
        .object([
            ("new", .number(Double(r.new))), ("changed", .number(Double(r.changed))), ("deleted", .number(Double(r.deleted))),
            ("unchanged", .number(Double(r.unchanged))), ("objects", .number(Double(r.objects))),
            ("seconds", .number((r.seconds * 1000).rounded() / 1000)),
            ("links", .array(r.links.map { .string("/" + $0) })),
        ])
    }
}

import Platform

#if canImport(Glibc)
import Glibc
#endif
