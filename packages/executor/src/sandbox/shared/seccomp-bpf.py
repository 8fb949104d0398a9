"""Compiles an OCI `linux.seccomp` section (JSON on stdin) to a classic BPF program (stdout) with
libseccomp, for `bwrap --seccomp FD`. Rules are applied the way runc applies them: syscalls this
libseccomp does not know are skipped, rules whose action is the default are skipped, and conditions
on the same argument become one rule each (libseccomp cannot AND two conditions on one argument)."""
import json
import sys

import seccomp

OPS = {
    'SCMP_CMP_NE': seccomp.NE, 'SCMP_CMP_LT': seccomp.LT, 'SCMP_CMP_LE': seccomp.LE, 'SCMP_CMP_EQ': seccomp.EQ,
    'SCMP_CMP_GE': seccomp.GE, 'SCMP_CMP_GT': seccomp.GT, 'SCMP_CMP_MASKED_EQ': seccomp.MASKED_EQ,
}


def action(name, errno):
    if name == 'SCMP_ACT_ALLOW':
        return seccomp.ALLOW
    if name == 'SCMP_ACT_ERRNO':
        return seccomp.ERRNO(errno)
    if name in ('SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD'):
        return seccomp.KILL
    if name == 'SCMP_ACT_KILL_PROCESS':
        return seccomp.KILL_PROCESS
    if name == 'SCMP_ACT_TRAP':
        return seccomp.TRAP
    if name == 'SCMP_ACT_LOG':
        return seccomp.LOG
    raise ValueError('unsupported seccomp action ' + name)


def main():
    profile = json.load(sys.stdin)
    default_errno = profile.get('defaultErrnoRet', 1)
    default = action(profile['defaultAction'], default_errno)
    f = seccomp.SyscallFilter(defaction=default)
    for arch in profile.get('architectures', []):
        a = getattr(seccomp.Arch, arch[len('SCMP_ARCH_'):])
        if not f.exist_arch(a):
            f.add_arch(a)
    for rule in profile['syscalls']:
        act_name, errno = rule['action'], rule.get('errnoRet', 1)
        if act_name == profile['defaultAction'] and (act_name != 'SCMP_ACT_ERRNO' or errno == default_errno):
            continue
        act = action(act_name, errno)
        args = [seccomp.Arg(a['index'], OPS[a['op']], a['value'], a.get('valueTwo', 0)) for a in rule.get('args') or []]
        indexes = [a['index'] for a in rule.get('args') or []]
        groups = [[a] for a in args] if len(set(indexes)) != len(indexes) else [args]
        for name in rule['names']:
            for group in groups:
                try:
                    f.add_rule(act, name, *group)
                except (RuntimeError, ValueError):
                    # Unknown to this libseccomp (or this architecture): nothing to filter.
                    pass
    f.export_bpf(sys.stdout)


main()
