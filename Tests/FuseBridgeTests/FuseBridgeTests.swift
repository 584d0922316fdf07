import CFuse
import Filesystem
import Platform
import ObjectStore
import Testing

@testable import FuseBridge

@Suite struct FuseBridgeTests {
    @Test func attributesBecomeStat() {
        let a = FileAttributes(ino: 42, kind: .file, size: 5000, mtime: Timestamp(seconds: 1_700_000_000, nanoseconds: 5), mode: 0o640, uid: 7, gid: 8)
        let st = stat(a)
        #expect(st.st_ino == 42)
        #expect(st.st_mode == UInt32(S_IFREG) | 0o640)
        #expect(st.st_size == 5000 && st.st_blocks == 10)
        #expect(st.st_uid == 7 && st.st_gid == 8 && st.st_nlink == 1)
        #expect(st.st_mtim.tv_sec == 1_700_000_000 && st.st_mtim.tv_nsec == 5)
        let d = stat(FileAttributes(ino: 1, kind: .directory, size: 0, mtime: Timestamp(seconds: 0), mode: 0o755, uid: 0, gid: 0))
        #expect(d.st_mode == UInt32(S_IFDIR) | 0o755 && d.st_nlink == 2)
    }

    @Test func everyReadPathOperationIsWired() {
        let ops = FuseBridge.operations()
        #expect(ops.`init` != nil && ops.lookup != nil && ops.forget != nil && ops.forget_multi != nil)
        #expect(ops.getattr != nil && ops.opendir != nil && ops.readdir != nil && ops.readdirplus != nil && ops.releasedir != nil)
        #expect(ops.open != nil && ops.read != nil && ops.release != nil && ops.statfs != nil)
        #expect(ops.getxattr != nil && ops.listxattr != nil && ops.access != nil)
    }

    @Test func shimMacrosMatchTheLibrary() {
        #expect(CFuse_api_version() == 312)
        #expect(CFuse_library_version() >= 312)
        let v = CFuse_bufvec_init(4096)
        #expect(v.count == 1 && v.buf.size == 4096)
    }
}
