"""Zeek log entries written by hand for the tests (invented hosts, documentation addresses)."""

from __future__ import annotations

import json
from typing import Any

TS = 1764496800.123456  # 2025-11-30T10:00:00.123456Z
TS_NS = 1_764_496_800_123_456_000


def conn(orig: str = "10.20.1.15", resp: str = "10.20.0.10", resp_p: int = 445) -> dict[str, Any]:
    return {
        "ts": TS,
        "uid": "CzQ8mV3bW1x7Ha2Yk",
        "id.orig_h": orig,
        "id.orig_p": 49822,
        "id.resp_h": resp,
        "id.resp_p": resp_p,
    }


def line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


HTTP_WEBSHELL = line(
    {
        **conn("198.51.100.23", "10.20.0.80", 80),
        "trans_depth": 1,
        "method": "POST",
        "host": "congdichvu.tinh.gov.vn",
        "uri": "/uploads/2025/img/shell.php?cmd=id",
        "version": "1.1",
        "user_agent": "python-requests/2.31.0",
        "request_body_len": 52,
        "response_body_len": 118,
        "status_code": 200,
        "status_msg": "OK",
        "tags": [],
        "resp_fuids": ["FkL0pq3sTqy9Wk1Nd1"],
        "resp_mime_types": ["text/plain"],
    }
)

# Nested connection id (what some shippers write) and a WebDAV download of an executable.
HTTP_WEBDAV_EXE = line(
    {
        "ts": TS,
        "uid": "CbW2ue1oSvGcO3Rnvd",
        "id": {"orig_h": "10.20.1.33", "orig_p": 50133, "resp_h": "203.0.113.45", "resp_p": 80},
        "method": "GET",
        "host": "files.example.top",
        "uri": "/webdav/share/update.exe",
        "user_agent": "Microsoft-WebDAV-MiniRedir/10.0.19045",
        "status_code": 200,
        "resp_mime_types": ["application/x-dosexec", "application/octet-stream"],
    }
)

HTTP_WEBDAV_PUT = line(
    {
        **conn("10.20.1.33", "203.0.113.45", 80),
        "method": "PUT",
        "host": "203.0.113.45",
        "uri": "/drop/report.docx",
        "user_agent": "Microsoft-WebDAV-MiniRedir/10.0.19045",
        "status_code": 201,
    }
)

HTTP_PLAIN = line(
    {
        **conn("10.20.1.40", "10.20.0.80", 80),
        "method": "GET",
        "host": "congdichvu.tinh.gov.vn",
        "uri": "/tin-tuc/thong-bao.html",
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0",
        "status_code": 200,
        "resp_mime_types": ["text/html"],
    }
)

SMB_WRITE_EXE = line(
    {
        **conn(),
        "fuid": "FnX4Ak2nJk0Mm1Yz9",
        "action": "SMB::FILE_WRITE",
        "path": "\\\\FS01\\ADMIN$",
        "name": "Temp\\svc_upd.exe",
        "size": 73802,
        "times.modified": TS,
    }
)

SMB_PSEXEC_PIPE = line(
    {
        **conn(),
        "fuid": "Fa1Bc2De3Fg4Hi5Jk",
        "action": "SMB::FILE_OPEN",
        "path": "\\\\FS01\\IPC$",
        "name": "RemCom_stdout",
        "size": 0,
    }
)

SMB_READ_DOC = line(
    {
        **conn(),
        "fuid": "Fq9Wt0Er1Ty2Ui3Op",
        "action": "SMB::FILE_READ",
        "path": "\\\\FS01\\PhongHanhChinh",
        "name": "bao-cao-quy-4.docx",
        "size": 20480,
    }
)

SMB_MAPPING = line(
    {
        **conn(),
        "path": "\\\\FS01\\C$",
        "service": "-",
        "native_file_system": "NTFS",
        "share_type": "DISK",
    }
)

DCE_RPC_CREATE_SERVICE = line(
    {
        **conn(resp_p=445),
        "rtt": 0.000412,
        "named_pipe": "\\pipe\\svcctl",
        "endpoint": "svcctl",
        "operation": "CreateServiceW",
    }
)

DCE_RPC_EFS = line(
    {
        **conn(resp_p=445),
        "rtt": 0.000301,
        "named_pipe": "\\pipe\\lsarpc",
        "endpoint": "efsrpc",
        "operation": "EfsRpcOpenFileRaw",
    }
)

KERBEROS_TGS_RC4 = line(
    {
        **conn("10.20.1.15", "10.20.0.5", 88),
        "request_type": "TGS",
        "client": "nguyenvan.a/TINH.LOCAL",
        "service": "MSSQLSvc/db01.tinh.local:1433",
        "success": True,
        "till": 2136214400.0,
        "cipher": "rc4-hmac",
        "forwardable": True,
        "renewable": True,
    }
)

RDP_FROM_INTERNET = line(
    {
        **conn("192.0.2.77", "10.20.0.21", 3389),
        "cookie": "administrator",
        "result": "encrypted",
        "security_protocol": "HYBRID",
        "client_channels": ["rdpdr", "rdpsnd", "cliprdr"],
        "cert_count": 0,
    }
)

X509_COBALT_LIKE = line(
    {
        "ts": TS,
        "id": "FvUsLr3c9nWu1pQ2Ke",
        "certificate.version": 3,
        "certificate.serial": "8BB00EE",
        "certificate.subject": "CN=Major Cobalt Strike,OU=AdvancedPenTesting,O=cobaltstrike",
        "certificate.issuer": "CN=Major Cobalt Strike,OU=AdvancedPenTesting,O=cobaltstrike",
        "certificate.key_alg": "rsaEncryption",
        "certificate.key_length": 2048,
        "san.dns": ["a.example.net", "b.example.net"],
        "basic_constraints.ca": False,
    }
)

# ISO 8601 timestamps (LogAscii::json_timestamps=JSON::TS_ISO8601), and writer metadata.
SSL_ISO_TS = line(
    {
        "_path": "ssl",
        "_node": "sensor-hn-01",
        "_write_ts": "2025-11-30T10:00:01.000000Z",
        "ts": "2025-11-30T10:00:00.123456Z",
        "uid": "C1s2t3u4v5w6x7y8z9",
        "id.orig_h": "10.20.1.50",
        "id.orig_p": 51000,
        "id.resp_h": "203.0.113.9",
        "id.resp_p": 443,
        "version": "TLSv13",
        "server_name": "update.example.org",
        "established": True,
        "resumed": False,
        "ja3": "e7d705a3286e19ea42f587b344ee6865",
    }
)

# --- TSV -------------------------------------------------------------------------------------

T = "\t"


def tsv_header(path: str, fields: list[str], types: list[str], set_sep: str = ",") -> list[str]:
    return [
        "#separator \\x09",
        f"#set_separator{T}{set_sep}",
        f"#empty_field{T}(empty)",
        f"#unset_field{T}-",
        f"#path{T}{path}",
        f"#open{T}2025-11-30-10-00-00",
        "#fields" + T + T.join(fields),
        "#types" + T + T.join(types),
    ]


CONN_FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
CONN_TYPES = ["time", "string", "addr", "port", "addr", "port"]
CONN_VALUES = ["1764496800.123456", "CzQ8mV3bW1x7Ha2Yk", "10.20.1.15", "49822", "10.20.0.10"]

HTTP_FIELDS = [
    *CONN_FIELDS,
    "method",
    "host",
    "uri",
    "referrer",
    "user_agent",
    "status_code",
    "tags",
    "resp_mime_types",
]
HTTP_TYPES = [
    *CONN_TYPES,
    "string",
    "string",
    "string",
    "string",
    "string",
    "count",
    "set[enum]",
    "vector[string]",
]
HTTP_HEADER = tsv_header("http", HTTP_FIELDS, HTTP_TYPES)
HTTP_TSV_WEBSHELL = T.join(
    [
        "1764496800.123456",
        "CHt1Wq2Er3Ty4Ui5Op",
        "198.51.100.23",
        "50512",
        "10.20.0.80",
        "80",
        "GET",
        "congdichvu.tinh.gov.vn",
        "/upload/files/cmd.aspx?c=whoami",
        "-",
        "curl/8.5.0",
        "200",
        "(empty)",
        "text/html,text/plain",
    ]
)

KERBEROS_FIELDS = [*CONN_FIELDS, "request_type", "client", "service", "success", "cipher"]
KERBEROS_TYPES = [*CONN_TYPES, "string", "string", "string", "bool", "string"]
KERBEROS_HEADER = tsv_header("kerberos", KERBEROS_FIELDS, KERBEROS_TYPES)
KERBEROS_TSV_FAIL = T.join(
    [
        *CONN_VALUES,
        "88",
        "AS",
        "tranthi.b/TINH.LOCAL",
        "krbtgt/TINH.LOCAL",
        "F",
        "aes256-cts-hmac-sha1-96",
    ]
)

SMB_FIELDS = [*CONN_FIELDS, "fuid", "action", "path", "name", "size"]
SMB_TYPES = [*CONN_TYPES, "string", "enum", "string", "string", "count"]
SMB_HEADER = tsv_header("smb_files", SMB_FIELDS, SMB_TYPES)
# A tab inside a value is written as \x09; non-ASCII bytes as \xHH escapes of their UTF-8.
SMB_TSV_ESCAPED = T.join(
    [
        *CONN_VALUES,
        "445",
        "FtAb1Cd2Ef3Gh4Ij",
        "SMB::FILE_OPEN",
        "\\\\FS01\\PhongTaiChinh",
        "B\\xc3\\xa1o c\\xc3\\xa1o\\x09q4.xlsx",
        "9000",
    ]
)
