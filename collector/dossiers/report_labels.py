"""The labels of the report documents, Vietnamese and English, by key.

The Vietnamese labels follow the wording of TT 20/2017 Mẫu 03 / Mẫu 04 and ND 331/2026 Mẫu 08
(docs DOMAIN.md 1.7, 3.1). `MANDATORY_VI` lists the labels every printed form must carry: a
test checks each appears in the rendered documents.
"""

from __future__ import annotations

from typing import Final

LABELS: Final[dict[str, tuple[str, str]]] = {
    "title.initial": ("BÁO CÁO BAN ĐẦU SỰ CỐ AN TOÀN THÔNG TIN MẠNG", "INITIAL INCIDENT REPORT"),
    "form.initial": (
        "Mẫu 03 (TT 20/2017/TT-BTTTT); báo cáo theo Điều 31 Nghị định 331/2026/NĐ-CP",
        "Form 03 (Circular 20/2017/TT-BTTTT); report under Decree 331/2026 Art. 31",
    ),
    "title.closure": ("BÁO CÁO KẾT THÚC ỨNG PHÓ SỰ CỐ", "INCIDENT RESPONSE CLOSURE REPORT"),
    "form.closure": ("Mẫu 04 (TT 20/2017/TT-BTTTT)", "Form 04 (Circular 20/2017/TT-BTTTT)"),
    "title.annual": (
        "BÁO CÁO TÌNH HÌNH BẢO ĐẢM AN NINH MẠNG HỆ THỐNG THÔNG TIN NĂM",
        "ANNUAL REPORT ON THE SECURITY OF INFORMATION SYSTEMS,",
    ),
    "form.annual": ("Mẫu 08 (Nghị định 331/2026/NĐ-CP)", "Form 08 (Decree 331/2026)"),
    "problems": (
        "Báo cáo chưa đầy đủ, cần bổ sung:",
        "The report is incomplete; to be completed:",
    ),
    "section.reporter": ("1. Thông tin người báo cáo", "1. Reporter"),
    "section.contact": ("Người liên hệ", "Contact person"),
    "section.system": ("2. Thông tin hệ thống gặp sự cố", "2. Affected system"),
    "section.incident": ("3. Thông tin sự cố", "3. The incident"),
    "section.extra": ("4. Thông tin bổ sung về hệ thống", "4. Further system information"),
    "section.signature": ("Thời gian báo cáo và ký xác nhận", "Report time and signature"),
    "section.initial_report": ("Báo cáo ban đầu", "Initial report"),
    "section.result": ("Kết quả xử lý sự cố", "Result of handling"),
    "section.period": ("Kỳ báo cáo", "Reporting period"),
    "section.totals": ("Tổng hợp", "Totals"),
    "section.table": ("Danh mục hệ thống thông tin", "Information systems"),
    "reporter.name": ("Tên tổ chức/cá nhân báo cáo", "Reporting organisation or person"),
    "reporter.address": ("Địa chỉ", "Address"),
    "reporter.phone": ("Điện thoại", "Phone"),
    "reporter.email": ("Thư điện tử", "E-mail"),
    "contact.name": ("Họ và tên", "Name"),
    "contact.title": ("Chức vụ", "Title"),
    "contact.phone": ("Điện thoại", "Phone"),
    "contact.email": ("Thư điện tử", "E-mail"),
    "system.operator": ("Tên đơn vị vận hành hệ thống thông tin", "Operator of the system"),
    "system.owner": ("Cơ quan chủ quản", "Owning agency"),
    "system.name": ("Tên hệ thống thông tin", "Information system"),
    "system.level": ("Cấp độ của hệ thống thông tin", "Security level of the system"),
    "system.security_provider": (
        "Đơn vị cung cấp dịch vụ bảo đảm an toàn thông tin",
        "Security service provider",
    ),
    "system.connectivity": (
        "Đơn vị cung cấp dịch vụ kết nối",
        "Connectivity provider(s)",
    ),
    "incident.title": ("Tên sự cố", "Incident name"),
    "incident.description": ("Mô tả sơ bộ về sự cố", "Short description"),
    "incident.detected_at": ("Ngày, giờ phát hiện sự cố", "Detected (date, time)"),
    "incident.category": ("Loại sự cố", "Incident category"),
    "incident.severity": ("Mức độ sự cố", "Severity"),
    "incident.status": ("Tình trạng sự cố", "Status"),
    "incident.detection": ("Cách thức phát hiện", "Detection method"),
    "incident.notified": ("Đã thông báo sự cố cho", "Already notified"),
    "incident.personal_data_breach": (
        "Sự cố lộ, lọt dữ liệu cá nhân",
        "Personal data breach",
    ),
    "extra.host_os": ("Hệ điều hành, phiên bản", "Operating system and version"),
    "extra.services": ("Các dịch vụ có trên hệ thống", "Services on the host"),
    "extra.controls": (
        "Các biện pháp bảo đảm an toàn thông tin đã triển khai",
        "Security measures in place",
    ),
    "extra.public_ips": ("Địa chỉ IP công khai của hệ thống", "Public IP addresses"),
    "extra.domains": ("Tên miền của hệ thống", "Domain names"),
    "extra.purpose": ("Mục đích chính sử dụng hệ thống", "Main purpose of the system"),
    "extra.attachments": ("Thông tin gửi kèm", "Attachments"),
    "extra.confidential": ("Đề nghị giữ bí mật thông tin báo cáo", "Keep this report confidential"),
    "extra.support_requested": ("Đề nghị hỗ trợ, kiến nghị", "Support requested, recommendations"),
    "report.code": ("Số hiệu báo cáo", "Report number"),
    "report.reported_at": ("Thời gian báo cáo", "Report time"),
    "closure.initial_report_ref": ("Số hiệu báo cáo ban đầu", "Initial report number"),
    "closure.initial_report_date": ("Ngày báo cáo ban đầu", "Initial report date"),
    "closure.result": (
        "Kết quả xử lý sự cố (diễn biến, cách khắc phục)",
        "Result of handling (what happened, how it was fixed)",
    ),
    "closure.lessons": ("Bài học kinh nghiệm", "Lessons learned"),
    "closure.documents": ("Tài liệu gửi kèm", "Attached documents"),
    "annual.period": ("Kỳ báo cáo (từ ngày – đến ngày)", "Period (from – to)"),
    "annual.unit_due": (
        "Đơn vị chuyên trách, đơn vị vận hành báo cáo trước ngày",
        "Specialised unit and operator report by",
    ),
    "annual.owner_due": ("Chủ quản báo cáo trước ngày", "Owner reports by"),
    "annual.recipient": ("Nơi nhận báo cáo", "Recipient"),
    "totals.managed": ("Số hệ thống thông tin đang quản lý", "Systems managed"),
    "totals.classified": ("Số hệ thống đã xác định cấp độ", "Systems classified"),
    "totals.with_dossier": ("Số hệ thống đã có hồ sơ đề xuất cấp độ", "Systems with a dossier"),
    "totals.appraised": ("Số hệ thống đã được thẩm định", "Systems appraised"),
    "totals.approved": ("Số hệ thống đã được phê duyệt cấp độ", "Systems approved"),
    "totals.assessed_periodically": (
        "Số hệ thống đã kiểm tra, đánh giá định kỳ",
        "Systems assessed periodically",
    ),
    "totals.incidents": ("Số sự cố trong kỳ", "Incidents in the period"),
    "annual.row": ("STT", "No."),
    "annual.system": ("Tên hệ thống thông tin", "Information system"),
    "annual.owner": ("Chủ quản", "Owner"),
    "annual.operator": ("Đơn vị vận hành", "Operator"),
    "annual.level": ("Cấp độ đề xuất", "Proposed level"),
    "annual.dossier_status": ("Tình trạng phê duyệt", "Approval status"),
    "annual.approval_decision": ("Quyết định phê duyệt", "Approval decision"),
    "annual.quy_che_decision": ("Quyết định ban hành Quy chế", "Quy chế decision"),
    "annual.assessments": ("Kiểm tra, đánh giá", "Assessments"),
    "annual.incidents_total": ("Tổng số sự cố", "Incidents, total"),
    "assessment.before_go_live": ("Trước khi đưa vào sử dụng", "Before go-live"),
    "assessment.periodic": ("Định kỳ", "Periodic"),
    "problem.no_level": ("chưa xác định cấp độ đề xuất", "no proposed level"),
    "problem.unregistered_system": (
        "sự cố của hệ thống chưa đăng ký",
        "incident of an unregistered system",
    ),
    "problem.no_category": ("sự cố chưa phân loại", "incident not categorised"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "yes_no.yes": ("Có", "Yes"),
    "yes_no.no": ("Không", "No"),
    "status.handled": ("Đã xử lý", "Handled"),
    "status.not_handled": ("Chưa xử lý", "Not yet handled"),
    "detection.ids": ("Hệ thống phát hiện xâm nhập", "Intrusion detection system"),
    "detection.log_review": ("Kiểm tra dữ liệu nhật ký", "Log-file review"),
    "detection.notified_by": ("Được thông báo từ", "Notified by"),
    "detection.other": ("Khác", "Other"),
    "notified.network_member": (
        "Thành viên mạng lưới ứng cứu sự cố",
        "Incident-response network member",
    ),
    "notified.isp": ("Doanh nghiệp cung cấp dịch vụ (ISP)", "Serving ISP"),
    "notified.coordinating_agency": (
        "Cơ quan điều phối, đơn vị chuyên trách (Bộ Công an)",
        "Coordinating agency / BCA specialised unit",
    ),
    "services.web": ("Web", "Web"),
    "services.mail": ("Mail", "Mail"),
    "services.database": ("Cơ sở dữ liệu", "Database"),
    "services.other": ("Khác", "Other"),
    "controls.antivirus": ("Phòng chống mã độc", "Antivirus"),
    "controls.firewall": ("Tường lửa", "Firewall"),
    "controls.ids": ("Hệ thống phát hiện xâm nhập", "IDS"),
    "controls.other": ("Khác", "Other"),
    "attachments.system_logs": ("Nhật ký hệ thống", "System logs"),
    "attachments.malware_sample": ("Mẫu mã độc", "Malware sample"),
    "attachments.other": ("Khác", "Other"),
    **{f"level.{n}": (str(n), str(n)) for n in range(1, 6)},
}

OPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "status": ("handled", "not_handled"),
    "detection": ("ids", "log_review", "notified_by", "other"),
    "notified": ("network_member", "isp", "coordinating_agency"),
    "services": ("web", "mail", "database", "other"),
    "controls": ("antivirus", "firewall", "ids", "other"),
    "attachments": ("system_logs", "malware_sample", "other"),
    "yes_no": ("yes", "no"),
    "level": ("1", "2", "3", "4", "5"),
}

# The labels of the mandatory (*) fields of each form, as they must appear in Vietnamese.
MANDATORY_VI: Final[dict[str, tuple[str, ...]]] = {
    "initial": tuple(
        LABELS[k][0]
        for k in (
            "reporter.name",
            "reporter.address",
            "reporter.phone",
            "reporter.email",
            "contact.name",
            "contact.phone",
            "contact.email",
            "system.operator",
            "incident.description",
            "incident.detected_at",
            "incident.status",
            "incident.detection",
            "incident.notified",
            "report.reported_at",
        )
    ),
    "closure": tuple(
        LABELS[k][0]
        for k in (
            "reporter.name",
            "closure.initial_report_ref",
            "closure.initial_report_date",
            "system.operator",
            "incident.title",
            "incident.description",
            "incident.detected_at",
            "closure.result",
        )
    ),
    "annual": tuple(
        LABELS[k][0]
        for k in (
            "annual.row",
            "annual.system",
            "annual.owner",
            "annual.operator",
            "annual.level",
            "annual.dossier_status",
            "annual.approval_decision",
            "annual.quy_che_decision",
            "annual.assessments",
            "totals.managed",
            "totals.approved",
        )
    ),
}
