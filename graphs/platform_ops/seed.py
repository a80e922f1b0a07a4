"""Sandbox data for the platform_ops autopilot: a social platform's morning with one incident
of each task type, and the signals that report them.

- reliability: `discourse_reply_ranker_v2` went to 50% forty minutes ago; since then
  `POST /v1/discourse/replies` returns 5xx (the ranker times out, see trace corr-7f3a9c) and
  clients retry, doubling the load. The latency and request series borrow their shape from
  the Numenta Anomaly Benchmark (MIT): realKnownCause/ec2_request_latency_system_failure
  (2014-03-18 21:31-22:46, x10 ms) and realAWSCloudwatch/elb_request_count_8c0756
  (2014-04-22 18:34-19:49, 1100 + 5 x count rps); the fix mirrors ITBench scenario 1 (a flag
  flooding a service; solution: turn the flag off).
- safety: a post by @mara.builds draws 24 replies from 24 accounts in under 40 minutes, 18
  of them younger than a week; one reply is a slur with 14 reports by a three-strike
  account. A second pile-on (C-5002) is led by @bigvoice, an account with 2.4M followers.
- support: @devon.k cannot log in after failed logins from an unknown Android device that
  registered a push token last night; @lena.m appeals an automated removal of a quote.
- growth: RSVPs for the Friday Gathering window trail their 40% target; the reminder push
  campaign flag is off (182,000 eligible users).
- data pipeline: the warehouse events consumer stalled 95 minutes ago (lag 90 min against a
  15 min SLO); the billing consumer is stalled too, and dies again after a restart on a
  message it cannot decode (its own error says only "heartbeat timeout").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.sandbox.platform_ops import (
    OpsAppeal,
    OpsAuditLog,
    OpsContent,
    OpsDashboard,
    OpsEndpoint,
    OpsFeatureFlag,
    OpsPushToken,
    OpsQueue,
    OpsSignal,
    OpsTrace,
    OpsUser,
)

MIN, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
NAB_LATENCY = [45.0, 48.0, 44.3, 43.0, 44.9, 46.5, 45.0, 46.9, 44.7, 45.9, 54.5, 43.7, 44.8,
               65.7, 99.2, 53.6]
NAB_REQUESTS = [99, 11, 32, 57, 40, 86, 136, 116, 84, 150, 48, 175, 656, 256, 195, 338]
ERROR_RATE = [0.3, 0.2, 0.4, 0.3, 0.3, 0.2, 0.3, 0.4, 1.9, 3.8, 5.2, 6.1, 7.4, 7.9, 8.3, 7.8]
RSVP_RATE = [44, 45, 43, 46, 44, 45, 44, 43, 39, 37, 35, 34, 33, 32, 31, 31]
WAREHOUSE_LAG = [1, 1, 2, 1, 1, 2, 1, 1, 9, 21, 34, 46, 58, 70, 82, 90]

# (id, handle, followers, trust, strikes, account age in days)
USERS = [
    ("U-1001", "mara.builds", 48_200, 88, 0, 1900),
    ("U-1003", "devon.k", 1_240, 74, 0, 1300),
    ("U-1004", "lena.m", 3_900, 81, 1, 2200),
    ("U-1005", "quietriot", 310, 22, 4, 400),
    ("U-1900", "bigvoice", 2_400_000, 61, 2, 3100),
    ("U-1902", "citydesk", 96_000, 90, 0, 2600),
]
PILERS = [f"U-20{n:02d}" for n in range(1, 25)]  # 24 accounts piling on C-5001


def seed(session: Session, tenant_id: str, now: datetime) -> bool:
    """Idempotent: nothing happens if the tenant already has platform users."""
    if session.scalar(select(OpsUser.id).where(OpsUser.tenant_id == tenant_id).limit(1)):
        return False
    t = tenant_id

    def user(uid: str, handle: str, followers: int, trust: int, strikes: int, age_days: float,
             **kw: Any) -> None:
        session.add(OpsUser(tenant_id=t, id=uid, handle=handle, status=kw.pop("status",
                                                                              "ACTIVE"),
                            strikes=strikes, trust_score=trust, followers=followers,
                            created_at=now - age_days * DAY,
                            last_login_at=kw.pop("last_login_at", now - 5 * HOUR),
                            failed_logins_24h=kw.pop("failed_logins_24h", 0), **kw))

    for uid, handle, followers, trust, strikes, age in USERS:
        extra = {"failed_logins_24h": 14, "last_login_at": now - 31 * HOUR} if (
            uid == "U-1003") else {}
        user(uid, handle, followers, trust, strikes, age, **extra)
    for i, uid in enumerate(PILERS):
        new = i % 4 != 3  # 18 of 24 accounts are less than a week old
        user(uid, f"{'throwaway' if new else 'reader'}_{4821 + i * 37}", 3 + i * 7,
             12 if new else 55, 3 if i == 0 else i % 2, (1 + i % 5) if new else 400 + i)
    _content(session, t, now)
    _appeals(session, t, now)
    _ops_systems(session, t, now)
    _signals(session, t, now)
    return True


def _content(session: Session, t: str, now: datetime) -> None:
    def post(cid: str, author: str, text: str, age: timedelta, parent: str | None = None,
             reports: int = 0, toxicity: int = 5, surface: str = "discourse",
             **kw: Any) -> None:
        session.add(OpsContent(tenant_id=t, id=cid, author_id=author, parent_id=parent,
                               surface=surface, text=text, reports=reports, toxicity=toxicity,
                               created_at=now - age, status=kw.pop("status", "VISIBLE"), **kw))

    post("C-5001", "U-1001", "Thread: why our city should rethink protected bike lanes on "
                             "arterial roads, with the collision data from the last 5 years.",
         2 * HOUR, reports=2, toxicity=4)
    jeers = ["ratio + nobody asked", "delete this", "imagine thinking bikes matter lol",
             "you people are a disease on this city", "log off", "clown take", "touch grass",
             "this is why nobody likes cyclists", "L + ratio", "who funds you?"]
    for i, uid in enumerate(PILERS):
        text = ("go back where you came from, [slur] like you should be run over"
                if i == 0 else jeers[i % len(jeers)])
        post(f"C-60{i:02d}", uid, text, (2 + i * 1.5) * MIN, parent="C-5001",
             reports=14 if i == 0 else i % 3, toxicity=96 if i == 0 else 55 + (i * 7) % 30)
    for i in range(12):  # older replies, outside the last hour
        post(f"C-61{i:02d}", "U-1902" if i % 2 else "U-1004", "Good data, thanks for posting",
             (70 + i * 5) * MIN, parent="C-5001", toxicity=2)
    post("C-5002", "U-1902", "Our investigation into the transit authority's budget.",
         3 * HOUR, toxicity=3)
    post("C-6500", "U-1900", "this 'journalist' is a fraud, everyone go tell them what you "
                             "think of them", 20 * MIN, parent="C-5002", reports=31, toxicity=91)
    for i, uid in enumerate(PILERS[:22]):
        post(f"C-65{i + 1:02d}", uid, "fraud", (1 + i * 2) * MIN, parent="C-5002",
             toxicity=60 + i % 20)
    post("C-5003", "U-1004", "Quoting today's article: \"the council voted 7-2 to cut the "
                             "night bus\". Thoughts?", 26 * HOUR, reports=1, toxicity=35,
         status="REMOVED", removed_reason="HATE_SPEECH_AUTO", removed_by="automod",
         removed_at=now - 25 * HOUR)
    post("C-5004", "U-1005", "[slur]s should be banned from this city", 30 * HOUR, reports=41,
         toxicity=93, status="REMOVED", removed_reason="HATE_SPEECH", removed_by="mod:ines",
         removed_at=now - 29 * HOUR)


def _appeals(session: Session, t: str, now: datetime) -> None:
    session.add_all([
        OpsAppeal(tenant_id=t, id="A-7001", user_id="U-1004", content_id="C-5003",
                  kind="CONTENT_REMOVAL", status="OPEN", filed_at=now - 20 * HOUR,
                  statement="My post only quoted a news article about the night bus. "
                            "Nothing in it is hateful."),
        OpsAppeal(tenant_id=t, id="A-7002", user_id="U-1005", content_id="C-5004",
                  kind="CONTENT_REMOVAL", status="OPEN", filed_at=now - 22 * HOUR,
                  statement="It was a joke, give me my post back."),
    ])


def _ops_systems(session: Session, t: str, now: datetime) -> None:
    five = 5 * MIN
    session.add_all([
        OpsDashboard(tenant_id=t, id="discourse-api", service="discourse-api",
                     title="Discourse API: replies", interval_minutes=5, ends_at=now,
                     series={"error_rate_5xx_pct": ERROR_RATE,
                             "p99_latency_ms": [round(v * 10) for v in NAB_LATENCY],
                             "requests_per_s": [1100 + 5 * v for v in NAB_REQUESTS]},
                     slo={"error_rate_5xx_pct": {"max": 1.0}, "p99_latency_ms": {"max": 800}}),
        OpsDashboard(tenant_id=t, id="gathering-engagement", service="gatherings",
                     title="Friday Gathering window: RSVPs", interval_minutes=60, ends_at=now,
                     series={"rsvp_rate_pct": RSVP_RATE},
                     slo={"rsvp_rate_pct": {"min": 40}}),
        OpsDashboard(tenant_id=t, id="warehouse-ingest", service="warehouse",
                     title="Warehouse ingestion lag (minutes)", interval_minutes=10,
                     ends_at=now, series={"lag_minutes": WAREHOUSE_LAG},
                     slo={"lag_minutes": {"max": 15}}),
        OpsTrace(tenant_id=t, id="corr-7f3a9c", service="discourse-api",
                 route="POST /v1/discourse/replies", status_code=503, duration_ms=2300,
                 at=now - 6 * MIN, spans=[
                     {"service": "discourse-api", "op": "POST /v1/discourse/replies",
                      "ms": 2300, "status": 503},
                     {"service": "reply-ranker", "op": "rank_v2", "ms": 2210,
                      "status": "timeout", "flag": "discourse_reply_ranker_v2"},
                     {"service": "postgres", "op": "INSERT replies", "ms": 0,
                      "status": "not_reached"}]),
        OpsFeatureFlag(tenant_id=t, id="discourse_reply_ranker_v2",
                       description="New reply ranking model for discourse threads",
                       owner_service="discourse-api", audience=2_100_000, enabled=True,
                       rollout_pct=50, previous_enabled=False, previous_rollout_pct=0,
                       updated_at=now - 40 * MIN, updated_by="deploy-bot",
                       sends_notifications=False),
        OpsFeatureFlag(tenant_id=t, id="discourse_new_composer",
                       description="Redesigned reply composer", owner_service="discourse-web",
                       audience=2_100_000, enabled=True, rollout_pct=100, previous_enabled=True,
                       previous_rollout_pct=50, updated_at=now - 9 * DAY,
                       updated_by="pat@platform", sends_notifications=False),
        OpsFeatureFlag(tenant_id=t, id="gathering_reminder_push",
                       description="Reminder push for the Friday Gathering window",
                       owner_service="gatherings", audience=182_000, enabled=False,
                       rollout_pct=0, previous_enabled=False, previous_rollout_pct=0,
                       updated_at=now - 14 * DAY, updated_by="growth-team",
                       sends_notifications=True),
        OpsEndpoint(tenant_id=t, id="EP-DISC-REPLIES", service="discourse-api",
                    route="POST /v1/discourse/replies", baseline_rps=1400, current_rps=2790,
                    min_limit_rps=200),
        OpsEndpoint(tenant_id=t, id="EP-DISC-THREADS", service="discourse-api",
                    route="GET /v1/discourse/threads", baseline_rps=5400, current_rps=5600,
                    min_limit_rps=500),
        OpsQueue(tenant_id=t, id="warehouse.events-consumer", kind="STREAM", depth=1_830_000,
                 lag_seconds=5400, slo_lag_seconds=900, consumer_status="STALLED",
                 stalled_since=now - 95 * MIN, last_error="consumer heartbeat timeout (300s)",
                 restarts_24h=0, updated_at=now - five),
        OpsQueue(tenant_id=t, id="warehouse.billing-consumer", kind="STREAM", depth=412_000,
                 lag_seconds=2700, slo_lag_seconds=900, consumer_status="STALLED",
                 stalled_since=now - 45 * MIN, last_error="consumer heartbeat timeout (300s)",
                 restarts_24h=0, poison_offset=88_412_331, updated_at=now - five),
        OpsQueue(tenant_id=t, id="moderation.reports", kind="MODERATION", depth=420,
                 lag_seconds=2280, slo_lag_seconds=3600, consumer_status="RUNNING",
                 restarts_24h=0, updated_at=now - five),
    ])
    tokens = [("PT-1003-IOS", "U-1003", "ios", "iPhone 14 (Devon's)", 400 * DAY, 31 * HOUR),
              ("PT-1003-WEB", "U-1003", "web", "Firefox on Linux", 90 * DAY, 2 * DAY),
              ("PT-1003-AND", "U-1003", "android", "Android 14 (unrecognised)", 9 * HOUR,
               20 * MIN),
              ("PT-1001-IOS", "U-1001", "ios", "iPhone 15", 300 * DAY, HOUR),
              ("PT-1005-AND", "U-1005", "android", "Pixel 7", 200 * DAY, 3 * HOUR)]
    session.add_all([OpsPushToken(tenant_id=t, id=i, user_id=u, platform=p, device_label=d,
                                  first_seen_at=now - first, last_seen_at=now - last)
                     for i, u, p, d, first, last in tokens])
    audit = [
        ("AUD-S-0001", 3 * HOUR, "alice@platform", "deploy", "service:discourse-api",
         {"version": "2026.11.18-3"}, None),
        ("AUD-S-0002", 40 * MIN, "deploy-bot", "feature_flag.updated",
         "flag:discourse_reply_ranker_v2",
         {"from": {"value": False, "rollout": 0}, "to": {"value": True, "rollout": 50}},
         "corr-deploy-88"),
        ("AUD-S-0003", 9 * DAY, "pat@platform", "feature_flag.updated",
         "flag:discourse_new_composer",
         {"from": {"value": True, "rollout": 50}, "to": {"value": True, "rollout": 100}}, None),
        ("AUD-S-0004", 9 * HOUR, "U-1003", "auth.push_token_registered", "user:U-1003",
         {"device": "Android 14 (unrecognised)", "ip_country": "RO"}, None),
        ("AUD-S-0005", 25 * HOUR, "automod", "content.removed", "content:C-5003",
         {"reason_code": "HATE_SPEECH_AUTO", "model": "toxicity-v7", "score": 35}, None),
        ("AUD-S-0006", 29 * HOUR, "mod:ines", "content.removed", "content:C-5004",
         {"reason_code": "HATE_SPEECH", "reports": 41}, None),
        ("AUD-S-0007", 95 * MIN, "warehouse", "consumer.stalled",
         "queue:warehouse.events-consumer", {"last_offset": 5_120_993_004}, None),
    ]
    audit += [(f"AUD-S-01{i:02d}", (8 * 60 - i * 25) * MIN, "U-1003", "auth.login_failed",
               "user:U-1003", {"device": "Android 14 (unrecognised)", "ip_country": "RO"}, None)
              for i in range(14)]
    session.add_all([OpsAuditLog(tenant_id=t, id=i, at=now - ago, actor=actor, action=action,
                                 target=target, detail=detail, correlation_id=corr)
                     for i, ago, actor, action, target, detail, corr in audit])


def signal_payloads() -> list[tuple[str, str, str, dict[str, Any], timedelta]]:
    """(signal id, task type, source, trigger payload, how long ago it fired)."""
    return [
        ("SIG-DISC-5XX", "reliability_triage", "alertmanager",
         {"alert_id": "ALERT-DISC-5XX", "service": "discourse-api",
          "route": "POST /v1/discourse/replies", "dashboard_id": "discourse-api",
          "correlation_id": "corr-7f3a9c", "severity": "SEV2"}, 10 * MIN),
        ("SIG-DOGPILE-5001", "safety_triage", "trust-safety",
         {"signal_id": "SIG-DOGPILE-5001", "content_id": "C-5001", "signal": "reply_burst"},
         8 * MIN),
        ("SIG-T-88121", "support_assist", "helpdesk",
         {"ticket_id": "T-88121", "user_id": "U-1003", "issue": "cannot_login",
          "text": "I can't log in since this morning and I keep getting alerts about logins "
                  "from a phone that isn't mine."}, 20 * MIN),
        ("SIG-T-88140", "support_assist", "helpdesk",
         {"ticket_id": "T-88140", "user_id": "U-1004", "issue": "appeal", "appeal_id": "A-7001",
          "text": "Please look at my appeal, the post was a news quote."}, 15 * MIN),
        ("SIG-GATHER-FRI", "growth_ops", "growth-analytics",
         {"signal_id": "SIG-GATHER-FRI", "dashboard_id": "gathering-engagement",
          "flag_key": "gathering_reminder_push"}, 30 * MIN),
        ("SIG-WH-LAG", "data_pipeline", "alertmanager",
         {"alert_id": "ALERT-WH-LAG", "queue": "warehouse.events-consumer",
          "dashboard_id": "warehouse-ingest"}, 5 * MIN),
    ]


def _signals(session: Session, t: str, now: datetime) -> None:
    session.add_all([OpsSignal(tenant_id=t, id=sid, kind=kind, source=source, payload=payload,
                               fired_at=now - ago)
                     for sid, kind, source, payload, ago in signal_payloads()])
