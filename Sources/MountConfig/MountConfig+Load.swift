#if canImport(Glibc)
import Glibc
#endif
import Platform

extension MountConfig {
    /// Reads and parses the file at `path`; a missing, unreadable, special or oversized file is refused by name.
    package static func load(path: String) throws(ConfigError) -> MountConfig {
        let fix = "check the --config path"
        // stat first: reading a FIFO or /dev/zero to find out it is too large would never end.
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw ConfigError("\(path): cannot read the config file: \(Errno(errno)); \(fix)")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw ConfigError("\(path): the config file is not a regular file; \(fix)")
        }
        guard st.st_size <= maxFileBytes else {
            throw ConfigError("\(path): the config file is \(st.st_size) bytes, over the 1 MiB limit; \(fix), or split the mount")
        }
        guard let text = readTextFile(path) else {
            throw ConfigError("\(path): cannot read the config file: \(Errno(errno)); \(fix) and its permissions")
        }
        return try parse(text, file: path)
    }
}
