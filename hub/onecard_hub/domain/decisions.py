"""Decisions on taps and scans: approval, or a decline with a reason and a screen text."""

from __future__ import annotations

import enum


class DeclineReason(enum.IntEnum):
    """Numbers match onecard.auth.v1.DeclineReason; NONE means approved."""

    NONE = 0
    CARD_UNKNOWN = 1
    CARD_REPORTED_LOST = 2
    CARD_INACTIVE = 3
    CARD_OTHER_SCHOOL = 4
    STUDENT_NOT_ENROLLED = 5
    CREDENTIAL_INVALID = 6
    COUNTER_REPLAYED = 7
    QR_EXPIRED = 8
    QR_REPLAYED = 9
    CLOCK_SKEW = 10
    OUTSIDE_TIME_WINDOW = 11
    ANTI_PASSBACK = 12
    INSUFFICIENT_FUNDS = 13
    PIN_REQUIRED = 14
    PIN_INCORRECT = 15
    PIN_LOCKED = 16
    DAILY_LIMIT_EXCEEDED = 17
    OUTSIDE_MEAL_WINDOW = 18
    MEAL_COUNT_EXCEEDED = 19
    REVERSED = 20
    STUDENT_SUSPENDED = 21
    STUDENT_GRADUATED = 22
    STUDENT_WITHDRAWN = 23
    CARD_FROZEN = 24
    CARD_REPLACED = 25
    ECARD_SUSPENDED = 26
    SCENE_NOT_LIVE = 27
    LOAN_LIMIT_REACHED = 28
    LOAN_OVERDUE = 29
    BOOK_NOT_ON_LOAN = 30
    BOOK_UNAVAILABLE = 31
    NOT_ON_ROSTER = 32
    WRONG_ROOM = 33
    OUTSIDE_CHECK_IN_WINDOW = 34
    ALREADY_CHECKED_IN = 35


APPROVED = DeclineReason.NONE

# Short texts for a terminal's screen (a few characters fit a POS display).
DISPLAY_TEXT: dict[DeclineReason, str] = {
    DeclineReason.NONE: "通过",
    DeclineReason.CARD_UNKNOWN: "无效卡",
    DeclineReason.CARD_REPORTED_LOST: "卡已挂失",
    DeclineReason.CARD_INACTIVE: "卡未启用或已停用",
    DeclineReason.CARD_OTHER_SCHOOL: "非本校卡",
    DeclineReason.STUDENT_NOT_ENROLLED: "学籍状态异常",
    DeclineReason.CREDENTIAL_INVALID: "卡片校验失败",
    DeclineReason.COUNTER_REPLAYED: "交易重复，请重刷",
    DeclineReason.QR_EXPIRED: "二维码已过期，请刷新",
    DeclineReason.QR_REPLAYED: "二维码已使用，请刷新",
    DeclineReason.CLOCK_SKEW: "终端时间异常",
    DeclineReason.OUTSIDE_TIME_WINDOW: "当前时段禁止通行",
    DeclineReason.ANTI_PASSBACK: "请勿重复刷卡进出",
    DeclineReason.INSUFFICIENT_FUNDS: "余额不足",
    DeclineReason.PIN_REQUIRED: "请输入密码",
    DeclineReason.PIN_INCORRECT: "密码错误",
    DeclineReason.PIN_LOCKED: "密码已锁定，请到卡务中心重置",
    DeclineReason.DAILY_LIMIT_EXCEEDED: "超出当日消费限额",
    DeclineReason.OUTSIDE_MEAL_WINDOW: "非营业时段",
    DeclineReason.MEAL_COUNT_EXCEEDED: "本餐次消费次数已满",
    DeclineReason.REVERSED: "交易已冲正",
    DeclineReason.STUDENT_SUSPENDED: "学籍已休学",
    DeclineReason.STUDENT_GRADUATED: "学籍已毕业",
    DeclineReason.STUDENT_WITHDRAWN: "学籍已退学",
    DeclineReason.CARD_FROZEN: "卡已冻结，请到卡务中心",
    DeclineReason.CARD_REPLACED: "卡已补换，请用新卡",
    DeclineReason.ECARD_SUSPENDED: "电子社保卡已暂停",
    DeclineReason.SCENE_NOT_LIVE: "本校暂未开通此功能",
    DeclineReason.LOAN_LIMIT_REACHED: "借阅数量已满",
    DeclineReason.LOAN_OVERDUE: "有逾期图书，请先归还",
    DeclineReason.BOOK_NOT_ON_LOAN: "该书不在您的借阅中",
    DeclineReason.BOOK_UNAVAILABLE: "该书已被借出",
    DeclineReason.NOT_ON_ROSTER: "不在本场考试名单",
    DeclineReason.WRONG_ROOM: "考场错误，请核对考场",
    DeclineReason.OUTSIDE_CHECK_IN_WINDOW: "不在签到时间内",
    DeclineReason.ALREADY_CHECKED_IN: "已签到",
}
