import FuzzTargets

#if canImport(Glibc)
import Glibc
#endif

/// The target `FUZZ_TARGET` names, read once.
nonisolated(unsafe) private var selected: String?

#if FUZZING
/// libFuzzer's entry point (built with `--sanitize=fuzzer -Xswiftc -DFUZZING`; see `make fuzz`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    if selected == nil {
        guard let name = getenv("FUZZ_TARGET") else { fatalError("set FUZZ_TARGET to one of \(FuzzTargets.all.joined(separator: ", "))") }
        selected = String(cString: name)
    }
    FuzzTargets.run(selected!, UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
/// Without libFuzzer: replays files (`lakecache-fuzz TARGET FILE...`), as a crash report is reproduced.
@main
struct FuzzReplay {
    static func main() {
        let args = CommandLine.arguments.dropFirst()
        guard let target = args.first, FuzzTargets.all.contains(target) else {
            print("usage: lakecache-fuzz TARGET FILE...   (TARGET: \(FuzzTargets.all.joined(separator: ", ")))")
            exit(64)
        }
        for path in args.dropFirst() {
            guard let f = fopen(path, "rb") else { continue }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&chunk, 1, chunk.count, f)
                if n == 0 { break }
                bytes += chunk[0..<n]
            }
            fclose(f)
            bytes.withUnsafeBytes { FuzzTargets.run(target, $0) }
            print("ok \(path)")
        }
    }
}
#endif
