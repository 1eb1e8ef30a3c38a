import CSeccomp
import Glibc

/// A seccomp filter built with libseccomp: a default action for every system call the rules do not name, and
/// rules that name a call, optionally with conditions on its arguments. Every libseccomp call is in this file.
///
/// Loading it sets no_new_privs first (libseccomp's default, stated here too) and applies it to every thread of
/// the process (TSYNC). A loaded filter cannot be removed or loosened, only tightened by another.
struct SeccompFilter {
    enum Action {
        case allow
        case fail(errno: Int32)
        case killProcess

        var value: UInt32 {
            switch self {
            case .allow: return SCMP_ACT_ALLOW
            // SCMP_ACT_ERRNO(x) is a macro: the errno goes in the low 16 bits.
            case .fail(let errno): return 0x0005_0000 | (UInt32(errno) & 0xffff)
            case .killProcess: return SCMP_ACT_KILL_PROCESS
            }
        }
    }

    /// A condition on one argument (0-5) of the call: `(argument & mask) == value`.
    struct Condition {
        var argument: UInt32
        var mask: UInt64
        var value: UInt64

        static func equals(_ argument: UInt32, _ value: UInt64) -> Condition {
            Condition(argument: argument, mask: .max, value: value)
        }
        static func bitsSet(_ argument: UInt32, _ bits: UInt64) -> Condition {
            Condition(argument: argument, mask: bits, value: bits)
        }
        static func bitsClear(_ argument: UInt32, _ bits: UInt64) -> Condition {
            Condition(argument: argument, mask: bits, value: 0)
        }
    }

    struct Rule {
        var syscall: String
        var action: Action
        /// All must hold (libseccomp ANDs the conditions of one rule).
        var conditions: [Condition] = []
    }

    enum FilterError: Error, CustomStringConvertible {
        case unknownSystemCall(String)
        case libseccomp(call: String, errno: Int32)

        var description: String {
            switch self {
            case .unknownSystemCall(let name): return "seccomp: libseccomp does not know the system call '\(name)'"
            case .libseccomp(let call, let errno): return "seccomp: \(call) failed: \(String(cString: strerror(errno)))"
            }
        }
    }

    var defaultAction: Action
    var rules: [Rule]

    /// Installs the filter on the calling process (all its threads). Irreversible.
    func load() throws {
        guard let context = seccomp_init(defaultAction.value) else {
            throw FilterError.libseccomp(call: "seccomp_init", errno: ENOMEM)
        }
        defer { seccomp_release(context) }
        try Self.check("seccomp_attr_set(NNP)", seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 1))
        try Self.check("seccomp_attr_set(TSYNC)", seccomp_attr_set(context, SCMP_FLTATR_CTL_TSYNC, 1))
        // A call made through another architecture's entry (int 0x80 on x86-64) has other numbers: kill it.
        try Self.check("seccomp_attr_set(BADARCH)",
                       seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS))
        for rule in rules {
            let number = seccomp_syscall_resolve_name(rule.syscall)
            guard number != __NR_SCMP_ERROR else { throw FilterError.unknownSystemCall(rule.syscall) }
            let comparisons = rule.conditions.map {
                scmp_arg_cmp(arg: $0.argument, op: SCMP_CMP_MASKED_EQ, datum_a: $0.mask, datum_b: $0.value)
            }
            try Self.check("seccomp_rule_add_array(\(rule.syscall))",
                           seccomp_rule_add_array(context, rule.action.value, number, UInt32(comparisons.count), comparisons))
        }
        try Self.check("seccomp_load", seccomp_load(context))
    }

    /// libseccomp returns 0 or a negated errno.
    private static func check(_ call: String, _ result: Int32) throws {
        guard result >= 0 else { throw FilterError.libseccomp(call: call, errno: -result) }
    }
}
