"""Texts the public reads: the privacy notice, and the e-mails of privacy requests and votes.

Stored here in the three languages of the site (not translated at run time). The retention
periods stated must match the code: rate-limit events are deleted after 24 hours
(``ratelimit.RETENTION_US``), privacy links expire after ``privacy_token_ttl`` and vote links
after ``vote_token_ttl`` (24 hours by default).
"""

from __future__ import annotations

PRIVACY_NOTICE: dict[str, str] = {
    "en": (
        "What we store when you comment: your comment, the stance you chose, the language, the "
        "time, and - only if you give them - your name and your e-mail address. Your name is "
        "shown with your comment; your e-mail address is never shown or published.\n\n"
        "Why: to show public views on the Smart City Blueprint measures to everyone and to the "
        "departments responsible, and, through your e-mail address, to let you export or "
        "delete your comments later.\n\n"
        "Votes: to count one vote per person, voting needs a signed-in account or an e-mail "
        "address you confirm through a link we send to it. We keep a one-way, keyed "
        "fingerprint of that address with your vote (never the address itself); the e-mail "
        "with the link is deleted once it has been sent.\n\n"
        "To stop abuse we also keep a one-way, keyed fingerprint of your browser's feedback "
        "cookie (one vote per browser as well) and of your network address (for rate limits). "
        "Address fingerprints are deleted after 24 hours.\n\n"
        "How long: comments stay on the portal while the measure or topic is shown, unless you "
        "ask for their deletion. Moderators may hide comments that break the rules; every "
        "moderation action is recorded.\n\n"
        "Your rights: enter the e-mail address you used on the privacy page and we will send a "
        "link (valid 24 hours, usable once) to export your comments or to delete them. Deletion "
        "removes your name, e-mail address and text; replies by others stay in place."
    ),
    "zh-Hant": (
        "您發表意見時我們儲存的資料：意見內容、您選擇的立場、語言、時間，以及（只在您提供時）您的"
        "姓名和電郵地址。姓名會與意見一併顯示；電郵地址絕不會顯示或公開。\n\n"
        "目的：讓公眾及負責部門看到市民對《香港智慧城市藍圖2.0》各項措施的意見；電郵地址讓您日後"
        "可以匯出或刪除自己的意見。\n\n"
        "投票：為確保每人只投一票，投票須先登入帳戶，或確認您的電郵地址（我們會寄出一條確認連結）。"
        "我們會連同您的投票保存該電郵地址的單向加密指紋（絕不保存地址本身）；載有連結的郵件在寄出後"
        "即會刪除。\n\n"
        "為防止濫用，我們亦會保存您瀏覽器意見 cookie 的單向加密指紋（每個瀏覽器亦只可投票一次）及"
        "網絡地址的單向加密指紋（用於限制發送次數）。網絡地址指紋會在 24 小時後刪除。\n\n"
        "保存期：意見會在有關措施或議題仍在網站上顯示期間保留，除非您要求刪除。管理員可隱藏違反"
        "規則的意見；每項管理行動均有紀錄。\n\n"
        "您的權利：在私隱頁面輸入您曾使用的電郵地址，我們會寄出一條連結（24 小時內有效，只可使用"
        "一次），讓您匯出或刪除您的意見。刪除會移除您的姓名、電郵地址及意見內容；他人的回覆會保留。"
    ),
    "zh-Hans": (
        "您发表意见时我们储存的资料：意见内容、您选择的立场、语言、时间，以及（只在您提供时）您的"
        "姓名和电邮地址。姓名会与意见一并显示；电邮地址绝不会显示或公开。\n\n"
        "目的：让公众及负责部门看到市民对《香港智慧城市蓝图2.0》各项措施的意见；电邮地址让您日后"
        "可以导出或删除自己的意见。\n\n"
        "投票：为确保每人只投一票，投票须先登录账户，或确认您的电邮地址（我们会寄出一条确认链接）。"
        "我们会连同您的投票保存该电邮地址的单向加密指纹（绝不保存地址本身）；载有链接的邮件在寄出后"
        "即会删除。\n\n"
        "为防止滥用，我们亦会保存您浏览器意见 cookie 的单向加密指纹（每个浏览器亦只可投票一次）及"
        "网络地址的单向加密指纹（用于限制发送次数）。网络地址指纹会在 24 小时后删除。\n\n"
        "保存期：意见会在有关措施或议题仍在网站上显示期间保留，除非您要求删除。管理员可隐藏违反"
        "规则的意见；每项管理行动均有纪录。\n\n"
        "您的权利：在私隐页面输入您曾使用的电邮地址，我们会寄出一条链接（24 小时内有效，只可使用"
        "一次），让您导出或删除您的意见。删除会移除您的姓名、电邮地址及意见内容；他人的回复会保留。"
    ),
}

# Site path prefix per language (the public site's /en/, /tc/, /sc/).
SITE_PREFIX = {"en": "en", "zh-Hant": "tc", "zh-Hans": "sc"}

_SUBJECT = {
    "en": {
        "export": "Smart City portal: export your comments",
        "delete": "Smart City portal: delete your comments",
    },
    "zh-Hant": {"export": "智慧城市網站：匯出您的意見", "delete": "智慧城市網站：刪除您的意見"},
    "zh-Hans": {"export": "智慧城市网站：导出您的意见", "delete": "智慧城市网站：删除您的意见"},
}

_BODY = {
    "en": (
        "Someone (we hope you) asked to {what} the comments left on the Smart City portal with "
        "this e-mail address.\n\nTo confirm, open this link within {hours} hours (it works "
        "once):\n\n{link}\n\nIf you did not ask for this, ignore this message: nothing happens."
    ),
    "zh-Hant": (
        "有人（希望是您）要求{what}在智慧城市網站以此電郵地址發表的意見。\n\n如要確認，請在 "
        "{hours} 小時內開啟以下連結（只可使用一次）：\n\n{link}\n\n如您沒有提出要求，請忽略本郵件，"
        "甚麼也不會發生。"
    ),
    "zh-Hans": (
        "有人（希望是您）要求{what}在智慧城市网站以此电邮地址发表的意见。\n\n如要确认，请在 "
        "{hours} 小时内打开以下链接（只可使用一次）：\n\n{link}\n\n如您没有提出要求，请忽略本邮件，"
        "什么也不会发生。"
    ),
}

_WHAT = {
    "en": {"export": "export", "delete": "delete"},
    "zh-Hant": {"export": "匯出", "delete": "刪除"},
    "zh-Hans": {"export": "导出", "delete": "删除"},
}


def privacy_mail(language: str, action: str, link: str, hours: int) -> tuple[str, str]:
    """Subject and body of the confirmation e-mail."""
    body = _BODY[language].format(what=_WHAT[language][action], hours=hours, link=link)
    return _SUBJECT[language][action], body


_VOTE_SUBJECT = {
    "en": "Smart City portal: confirm your vote",
    "zh-Hant": "智慧城市網站：確認您的投票",
    "zh-Hans": "智慧城市网站：确认您的投票",
}

_VOTE_BODY = {
    "en": (
        "Someone (we hope you) asked to up-vote a comment on the Smart City portal with this "
        "e-mail address. Each address counts as one person, so that everyone votes once.\n\n"
        "To count the vote, open this link within {hours} hours and press its button (it works "
        "once):\n\n{link}\n\nIf you did not ask for this, ignore this message: nothing "
        "happens."
    ),
    "zh-Hant": (
        "有人（希望是您）以此電郵地址要求在智慧城市網站為一則意見投票。每個電郵地址代表一人，"
        "確保每人只投一票。\n\n如要計算這一票，請在 {hours} 小時內開啟以下連結並按下按鈕（只可"
        "使用一次）：\n\n{link}\n\n如您沒有提出要求，請忽略本郵件，甚麼也不會發生。"
    ),
    "zh-Hans": (
        "有人（希望是您）以此电邮地址要求在智慧城市网站为一则意见投票。每个电邮地址代表一人，"
        "确保每人只投一票。\n\n如要计算这一票，请在 {hours} 小时内打开以下链接并按下按钮（只可"
        "使用一次）：\n\n{link}\n\n如您没有提出要求，请忽略本邮件，什么也不会发生。"
    ),
}


def vote_mail(language: str, link: str, hours: int) -> tuple[str, str]:
    """Subject and body of the e-mail that proves a voter's address."""
    return _VOTE_SUBJECT[language], _VOTE_BODY[language].format(hours=hours, link=link)
