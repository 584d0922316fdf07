import Control
import Filesystem
import MountConfig
import ObjectStore

/// `reload` (and SIGHUP): rereads the config file and changes the links without a remount. A file that
/// fails validation, or a link whose bucket cannot be reached, changes nothing and says why.
enum ReloadHandler {
    static func reload(_ p: MountDaemon.Parts) -> String {
        guard let file = p.plan.configFile else {
            return ControlHandlers.error("this mount has no config file (it was mounted from a URL); remount with --config FILE to change links")
        }
        var command = p.command
        command.config = file
        let plans: [LinkPlan]
        do {
            let config = try MountPlan.loadConfig(command)
            plans = try MountPlan.linkPlans(command, url: nil, file: config)
        } catch {
            return ControlHandlers.error("reload refused, nothing changed: \(error.message)")
        }
        let checked: CLIFailure? = ControlHandlers.wait { () async -> CLIFailure? in
            do {
                // Only links that are new or point elsewhere need their bucket checked again.
                let fresh = plans.filter { plan in p.builder.plan(plan.path).map { !NamespaceBuilder.same($0, plan) } ?? true }
                try await MountChecks.checkBuckets(fresh)
                return nil
            } catch let e as CLIFailure {
                return e
            } catch {
                return CLIFailure(message: "\(error)")
            }
        }
        if let checked { return ControlHandlers.error("reload refused, nothing changed: \(checked.message)") }
        if plans.contains(where: { !$0.policy.readOnly }) && p.writeBack == nil {
            return ControlHandlers.error("reload refused, nothing changed: the mount started with every link read-only, so it has no write path; remount to add a writable link")
        }
        let links = p.builder.links(for: plans)
        let changes: Filesystem.LinkChanges
        do {
            changes = try p.filesystem.replaceLinks(links)
        } catch {
            return ControlHandlers.error("reload refused, nothing changed: \(error)")
        }
        p.builder.commit(links, plans: plans)
        p.background.start(links)
        p.logger.info("links reloaded", metadata: [
            "added": "\(changes.added)", "removed": "\(changes.removed)", "changed": "\(changes.changed)",
        ])
        return JSONValue.object([
            ("ok", .bool(true)),
            ("added", .array(changes.added.map { .string("/" + $0) })),
            ("removed", .array(changes.removed.map { .string("/" + $0) })),
            ("changed", .array(changes.changed.map { .string("/" + $0) })),
        ]).encoded()
    }
}
