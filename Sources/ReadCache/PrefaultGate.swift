/// Decides when committing the memory tier may go on: after `quiet` with no demand (read, fill or
/// prefetch), counting from the mount.
///
/// It compares the demand counter between looks and measures the quiet time by the clock, not by the number
/// of looks: a sleep cut short, or a look delayed on a loaded machine, then changes nothing about the
/// decision. A pure value, so its rule is tested with times of the test's choosing.
package struct PrefaultGate: Sendable {
    /// How long demand must stay unchanged before committing goes on.
    package let quiet: Duration
    private var seen: Int
    private var quietSince: ContinuousClock.Instant

    /// A gate that starts quiet at `start` (the mount counts as demand) with `demand` as the counter's value.
    package init(quiet: Duration, demand: Int, start: ContinuousClock.Instant) {
        self.quiet = quiet
        seen = demand
        quietSince = start
    }

    /// Looks at the demand counter at `now`; true when nothing has changed it for `quiet`.
    package mutating func mayCommit(demand: Int, now: ContinuousClock.Instant) -> Bool {
        if demand != seen {
            seen = demand
            quietSince = now
            return false
        }
        return now - quietSince >= quiet
    }
}
