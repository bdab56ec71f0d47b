"""Hand-written audit.log records (composed for these tests) shared by the auditd tests."""

from __future__ import annotations

GS = "\x1d"  # the separator before the ENRICHED part

SYSCALL_OPEN_SHADOW = (
    "type=SYSCALL msg=audit(1795350000.250:8811): arch=c000003e syscall=257 success=yes exit=3"
    " a0=ffffff9c a1=7ffc1a2b3000 a2=0 a3=0 items=1 ppid=4120 pid=4188 auid=1001 uid=0 gid=0"
    ' euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts1 ses=7 comm="python3"'
    ' exe="/usr/bin/python3.11" subj=unconfined key="shadow_read"'
    f'{GS}ARCH=x86_64 SYSCALL=openat AUID="lan" UID="root" GID="root" EUID="root" SUID="root"'
    ' FSUID="root" EGID="root" SGID="root" FSGID="root"'
)
PATH_SHADOW = (
    'type=PATH msg=audit(1795350000.250:8811): item=0 name="/etc/shadow" inode=1311 dev=fd:01'
    " mode=0100640 ouid=0 ogid=42 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0"
    f' cap_fver=0 cap_frootid=0{GS}OUID="root" OGID="shadow"'
)
CWD_HEX = "type=CWD msg=audit(1795350000.250:8811): cwd=2F686F6D652F6C616E2F6D7920646972"
PROCTITLE_HEX = (
    "type=PROCTITLE msg=audit(1795350000.250:8811):"
    " proctitle=707974686F6E33002D63007072696E74286F70656E28272F6574632F736861646F77272929"
)
EXECVE_HEX = (
    'type=EXECVE msg=audit(1795350010.004:8820): argc=4 a0="sh" a1="-c"'
    " a2=6563686F2068656C6C6F207C20626173653634 a3=(null)"
)
EXECVE_SPLIT = (
    'type=EXECVE msg=audit(1795350010.004:8821): argc=2 a0="printf" a1_len=12'
    ' a1[0]="abcdef" a1[1]="ghijkl"'
)
PATH_CREATE_HEX = (
    "type=PATH msg=audit(1795350011.5:8830): item=1 name=2F746D702F6576696C2066696C65"
    " inode=77 dev=fd:01 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=CREATE"
)
PATH_NULL = (
    "type=PATH msg=audit(1795350011.5:8830): item=0 name=(null) inode=12 dev=fd:01"
    " mode=040755 nametype=PARENT"
)
SERVICE_STOP = (
    "type=SERVICE_STOP msg=audit(1795350020.120:9001): pid=1 uid=0 auid=4294967295"
    ' ses=4294967295 subj=unconfined msg=\'unit=firewalld comm="systemd"'
    ' exe="/usr/lib/systemd/systemd" hostname=? addr=? terminal=? res=success\''
)
SERVICE_START = SERVICE_STOP.replace("SERVICE_STOP", "SERVICE_START").replace(":9001", ":9002")
USER_LOGIN_FAILED = (
    "type=USER_LOGIN msg=audit(1795350030.9:9100): pid=5120 uid=0 auid=4294967295"
    ' ses=4294967295 subj=unconfined msg=\'op=login acct="root" exe="/usr/sbin/sshd"'
    " hostname=? addr=203.0.113.9 terminal=ssh res=failed'"
)
USER_ACCT_HEX_ACCT = (
    "type=USER_ACCT msg=audit(1795350031.1:9101): pid=5121 uid=0 auid=4294967295"
    " ses=4294967295 msg='op=PAM:accounting grantors=pam_unix acct=6C616E20626F"
    ' exe="/usr/bin/sudo" hostname=? addr=? terminal=/dev/pts/1 res=success\''
)
ADD_USER_OLD = (
    "type=ADD_USER msg=audit(1795350040.0:9200): pid=6001 uid=0 auid=1001 ses=7"
    ' msg=\'op=adding user id=1005 exe="/usr/sbin/useradd" hostname=web1 addr=? terminal=pts/1'
    " res=success'"
)
ADD_USER_NEW = (
    "type=ADD_USER msg=audit(1795350041.0:9201): pid=6002 uid=0 auid=1001 ses=7"
    ' msg=\'op=add-user acct="backup2" exe="/usr/sbin/useradd" hostname=web1 addr=?'
    " terminal=pts/1 res=success'"
)
CONFIG_CHANGE = (
    "type=CONFIG_CHANGE msg=audit(1795350050.3:9300): auid=1001 ses=7 subj=unconfined"
    ' op=remove_rule key="shadow_read" list=4 res=1'
)
DAEMON_END = (
    "type=DAEMON_END msg=audit(1795350060.0:9400): op=terminate auid=0 uid=0 ses=4294967295"
    " subj=unconfined pid=1 res=success"
)
SYSCALL_SYSLOG_MULTIKEY = (
    "type=SYSCALL msg=audit(1795350070.777:9500): arch=c000003e syscall=103 success=yes exit=0"
    " a0=5 a1=0 a2=0 a3=0 items=0 ppid=700 pid=701 auid=1001 uid=0 tty=pts1 ses=7"
    ' comm="dmesg" exe="/usr/bin/dmesg" key=636C6561725F646D6573670164697361626C65'
    f'{GS}ARCH=x86_64 SYSCALL=syslog AUID="lan" UID="root"'
)
NODE_TTY = (
    "node=db1 type=TTY msg=audit(1795350080.5:9600): tty pid=812 uid=0 auid=1001 ses=7"
    ' major=136 minor=1 comm="bash" data=6C730D'
)
AVC = (
    "type=AVC msg=audit(1795350090.2:9700): avc:  denied  { read } for  pid=900"
    ' comm="httpd" name="shadow" dev="dm-0" ino=1311 scontext=system_u:system_r:httpd_t:s0'
    " tcontext=system_u:object_r:shadow_t:s0 tclass=file permissive=0"
)
UNTERMINATED = (
    'type=USER_CMD msg=audit(1795350100.0:9800): pid=1 uid=1001 msg=\'cwd="/root" cmd=6C73'
)
