import Foundation

/// The end of a command that has used OpenBLAS's threads: stdout and stderr flushed, then `_exit`, so that C
/// libraries' exit-time destructors do not run.
///
/// OpenBLAS 0.3.21's destructor joins its worker threads, and that join can wait forever. Seen at the end of a
/// clean drain after 20 minutes of ViT-Large traffic: the main thread in `blas_thread_shutdown_` → `pthread_join`,
/// the idle worker still in `pthread_cond_wait`. A daemon that never exits holds `systemctl stop` until
/// TimeoutStopSec's SIGKILL, and a bulk Job's pod never completes. Call it once everything is answered, written
/// and closed.
enum ProcessEnd {
    static func now(status: Int32) -> Never {
        fflush(stdout)
        fflush(stderr)
        _exit(status)
    }
}
