"""Zendesk reader: documented examples of tickets, users, organizations, ticket events; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journeylib.exceptions import SourceFormatError
from journeylib.store import Store
from journeylib.store.sources import detect_kind, ingest_source_files, ingest_vendor_file

VENDORS = Path(__file__).parent / "data" / "vendors"
FILES = sorted((VENDORS / "zendesk").glob("*.json"))


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    ingest_source_files(s, "salesforce", sorted((VENDORS / "salesforce").glob("*.csv")))
    yield s
    s.close()


def test_kinds_are_recognised_from_content() -> None:
    assert {p.name: detect_kind("zendesk", p) for p in FILES} == {
        "audits.json": "audits",
        "organizations.json": "organizations",
        "ticket_events.json": "ticket_events",
        "tickets.json": "tickets",
        "users.json": "users",
    }


def test_documented_examples(store: Store) -> None:
    res = ingest_source_files(store, "zendesk", list(reversed(FILES)))  # any order
    by = {(Path(r.file).name, r.table): r for r in res.files}
    t = by[("tickets.json", "tickets")]
    assert (t.read, t.loaded, t.quarantined) == (3, 3, 0)
    # ticket_created ×3, ticket_solved for 35437 (metric_set) and 35438 (closed: updated_at, noted)
    assert by[("tickets.json", "events")].loaded == 5
    assert "solved_at taken from updated_at (no metric_set) (1)" in t.notes
    # the agent is support staff, not a customer person
    assert by[("users.json", "identities")].read == 3
    assert any("agents and admins skipped" in n for n in by[("users.json", "identities")].notes)
    tickets = store.table("tickets", where="ticket_id LIKE 'zendesk:%'").set_index("ticket_id")
    fire = tickets.loc["zendesk:35436"]
    assert (fire["subject"], fire["body"], fire["status"], fire["priority"], fire["channel"]) == (
        "Help, my printer is on fire!", "The fire is very colorful.", "open", "high", "web",
    )  # fmt: skip
    assert json.loads(fire["properties"])["tags"] == ["enterprise", "other_tag"]
    invite = tickets.loc["zendesk:35437"]
    assert invite["created_at"].isoformat() == "2011-05-01T07:00:00+00:00"  # +02:00 offset
    assert invite["solved_at"].isoformat() == "2011-05-01T15:30:00+00:00"  # metric_set.solved_at
    assert invite["satisfaction"] == 1.0
    assert tickets.loc["zendesk:35438", "satisfaction"] == 0.0
    assert pd_isna(fire["satisfaction"])  # "offered" is no rating
    # identity: the organization's external_id is the Salesforce account; Jane is in it;
    # Bob's domain is Globex's; Pat uses gmail and is unmatched
    assert fire["customer_id"] == "0015g00000ACME001"
    assert invite["customer_id"] == "0015g00000GLOBEX1"
    assert pd_isna(tickets.loc["zendesk:35438", "customer_id"])
    m = store.query("SELECT source_id, method FROM identity_map WHERE source = 'zendesk'").set_index("source_id")["method"].to_dict()
    assert m == {
        "organization:509974": "crm_id",
        "user:20978392": "email",
        "user:20978393": "domain",
        "user:20978394": "unmatched",
        "ticket:35436": "crm_id",
        "ticket:35437": "domain",
        "ticket:35438": "unmatched",
    }
    # comment events of the incremental export follow their ticket
    ev = store.table("events", where="event_id = 'zendesk:comment:926256957614'")
    assert ev["customer_id"].tolist() == ["0015g00000ACME001"]
    assert json.loads(ev["properties"].iloc[0])["body"] == "It is still burning."


def pd_isna(v: object) -> bool:
    import pandas as pd

    return bool(pd.isna(v))


def test_snapshot_update_replaces_ticket(store: Store, tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"tickets": [{"id": 1, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z", "status": "open", "requester_id": 5}]}))
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"tickets": [{"id": 1, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z", "status": "solved",
                                          "requester_id": 5, "metric_set": {"solved_at": "2024-01-02T00:00:00Z"}}]}))  # fmt: skip
    ingest_vendor_file(store, a, reader="zendesk")
    r = {x.table: x for x in ingest_vendor_file(store, b, reader="zendesk")}
    assert (r["tickets"].loaded, r["tickets"].updated) == (1, 1)
    assert (r["events"].loaded, r["events"].duplicate) == (1, 1)  # ticket_solved new, ticket_created seen
    assert store.table("tickets", where="ticket_id = 'zendesk:1'")["status"].tolist() == ["solved"]


BAD = [
    ("not an object", '{"tickets": [42]}', 2, "expected a JSON object per ticket, found int"),
    ("missing id", '{"tickets": [{"created_at": "2024-01-01T00:00:00Z", "subject": "x", "status": "open"}]}', 2, "missing required field(s) id"),
    ("bad time", '{"tickets": [{"id": 9, "created_at": "last week", "subject": "x", "status": "open"}]}', 2, "created_at: expected an ISO-8601 time, found 'last week'"),
]


@pytest.mark.parametrize(("kind", "text", "line", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_record_is_quarantined(store: Store, tmp_path: Path, kind: str, text: str, line: int, reason: str) -> None:
    f = tmp_path / "tickets.json"
    f.write_text(text.replace('{"tickets": [', '{"tickets": [\n'))  # the record starts on line 2
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert (r["tickets"].read, r["tickets"].quarantined) == (1, 1)
    q = store.query("SELECT line, reason FROM quarantine")
    assert q["line"].tolist() == [line]
    assert reason in q["reason"].iloc[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"tickets": [{"id": 1,', "not JSON at line 1, column"),
        (b'{"widgets": []}', "not a Zendesk export the reader knows"),
        ('{"tickets": [{"id": 1, "subject": "caf\xe9"}]}'.encode("latin-1"), "line 1: bytes that are not valid UTF-8"),
        (b"", "the file is empty"),
    ],
    ids=["truncated", "unknown shape", "not utf-8", "empty"],
)
def test_unreadable_file_fails_whole(store: Store, tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "x.json"
    f.write_bytes(content)
    before = store.count("ingest_log")
    with pytest.raises(SourceFormatError, match=message) as info:
        ingest_vendor_file(store, f, reader="zendesk")
    assert str(f) in str(info.value)
    assert store.count("ingest_log") == before


def test_bom_and_json_lines(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "tickets.jsonl"
    rec = {"id": 7, "created_at": "2024-01-01T00:00:00Z", "subject": "s", "status": "new", "requester_id": 20978392}
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps(rec).encode() + b"\nnot json\n")
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert (r["tickets"].read, r["tickets"].loaded, r["tickets"].quarantined) == (2, 1, 1)
    assert store.query("SELECT line, reason FROM quarantine")["reason"].tolist() == ["not valid JSON"]


# -- issue 11: one record never takes a file down; nothing unread is silent ------------------------
def _ticket(i: int, **extra: object) -> str:
    return json.dumps({"id": i, "created_at": "2024-01-01T00:00:00Z", "subject": f"ticket {i}", "status": "open", **extra})


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('"subject": "broken \\ud800 text"', "subject: a lone UTF-16 surrogate \\ud800, which is not a character"),
        ('"subject": "nul \\u0000 inside"', "subject: a NUL character (\\u0000), which text columns refuse"),
        ('"custom": {"score": NaN}', "custom.score: NaN is not a finite number; such numbers are refused"),
        ('"custom": {"score": -Infinity}', "custom.score: -Infinity is not a finite number; such numbers are refused"),
        ('"custom": ' + "[" * 100_000 + "]" * 100_000, "JSON nested deeper than 64 levels (options.max_json_depth); the record was not read"),
        ('"custom": ' + "[" * 70 + "]" * 70, "JSON nested deeper than 64 levels (options.max_json_depth); the record was not read"),
    ],
    ids=["lone-surrogate", "nul", "nan", "infinity", "deep-100000", "deep-70"],
)
def test_one_unstorable_ticket_is_quarantined_and_the_file_goes_on(store: Store, tmp_path: Path, bad: str, reason: str) -> None:
    f = tmp_path / "tickets.json"
    broken = '{"id": 2, "created_at": "2024-01-01T00:00:00Z", "status": "open", ' + bad + "}"
    f.write_text('{"tickets": [\n' + _ticket(1) + ",\n" + broken + ",\n" + _ticket(3) + "\n]}")
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert (r["tickets"].read, r["tickets"].loaded, r["tickets"].quarantined) == (3, 2, 1)
    q = store.query("SELECT line, reason FROM quarantine")
    assert (q["line"].tolist(), q["reason"].tolist()) == ([3], [reason])
    assert sorted(store.table("tickets", where="ticket_id LIKE 'zendesk:%'")["ticket_id"]) == ["zendesk:1", "zendesk:3"]


def test_deep_json_lines_record_is_quarantined_alone(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "tickets.jsonl"
    deep = '{"id": 2, "created_at": "2024-01-01T00:00:00Z", "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
    f.write_text(_ticket(1) + "\n" + deep + "\n" + _ticket(3) + "\n")
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert (r["tickets"].loaded, r["tickets"].quarantined) == (2, 1)
    assert store.query("SELECT reason FROM quarantine")["reason"].tolist() == [
        "JSON nested deeper than 64 levels (options.max_json_depth); the record was not read"
    ]


def test_unreadable_optional_times_are_noted(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "tickets.json"
    f.write_text(json.dumps({"tickets": [{"id": 9, "created_at": "2024-01-01T00:00:00Z", "updated_at": "soon", "status": "solved", "metric_set": {"solved_at": "later"}}]}))
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert r["tickets"].loaded == 1
    assert r["tickets"].notes_count == 2
    notes = store.query("SELECT line, table_name, row_key, field, value FROM ingest_notes ORDER BY field")
    assert notes.to_dict("list") == {
        "line": [1, 1], "table_name": ["tickets", "tickets"], "row_key": ["zendesk:9", "zendesk:9"],
        "field": ["metric_set.solved_at", "updated_at"], "value": ["later", "soon"],
    }  # fmt: skip


# -- issue 12: conversations as users export them (Ticket Comments files, ticket audits) -------------
COMMENTS = sorted((VENDORS / "zendesk" / "comments").glob("*.json"))


def _comments(store: Store) -> dict[str, dict[str, object]]:
    ev = store.query("SELECT event_id, timestamp, customer_id, user_id, properties FROM events WHERE event = 'ticket_comment'")
    return {r.event_id: {"timestamp": r.timestamp, "customer_id": r.customer_id, "user_id": r.user_id, **json.loads(r.properties)} for r in ev.itertuples()}


def test_comment_files_and_audits_are_recognised() -> None:
    assert [detect_kind("zendesk", p) for p in COMMENTS] == ["comments", "comments"]
    assert detect_kind("zendesk", VENDORS / "zendesk" / "audits.json") == "audits"


def test_per_ticket_comments_land_on_their_ticket_with_their_author(store: Store) -> None:
    ingest_source_files(store, "zendesk", [*FILES, *COMMENTS])
    c = _comments(store)
    # the ticket id comes from the file name (ticket_35436_comments.json, 35437.json)
    assert {k: v["ticket_id"] for k, v in c.items() if k.startswith("zendesk:comment:12")} == dict.fromkeys(
        ["zendesk:comment:1274", "zendesk:comment:1275", "zendesk:comment:1276", "zendesk:comment:1277"], "zendesk:35436"
    )
    assert c["zendesk:comment:2001"]["ticket_id"] == "zendesk:35437"
    # times as written (+02:00 honoured); every comment on its ticket's customer
    assert c["zendesk:comment:1277"]["timestamp"].isoformat() == "2009-07-22T08:00:00+00:00"
    assert {c[k]["customer_id"] for k in c if c[k]["ticket_id"] == "zendesk:35436"} == {"0015g00000ACME001"}
    assert {c[k]["customer_id"] for k in c if c[k]["ticket_id"] == "zendesk:35437"} == {"0015g00000GLOBEX1"}
    # authors: the internal note and the trigger's message are staff; in 35437.json the sideloaded users say who is who
    roles = {k.rsplit(":", 1)[1]: (v["author_role"], v["user_id"]) for k, v in c.items() if k.split(":")[-1] in ("1274", "1275", "1276", "1277", "2001", "2002", "2003")}
    assert roles == {
        "1274": ("unknown", "jane.doe@acme.com"),  # Jane, an end-user of users.json: a customer person
        "1275": ("unknown", None),  # Agent Ann's public reply: users.json knows her as an agent, so she is no person
        "1276": ("staff", None),  # internal note
        "1277": ("unknown", "jane.doe@acme.com"),
        "2001": ("customer", "bob@globex.io"),  # sideloaded end-user
        "2002": ("staff", None),  # sideloaded agent
        "2003": ("staff", None),  # via.channel rule: a trigger's message
    }
    # agents are never people of a customer
    assert store.query("SELECT count(*) AS n FROM users WHERE user_id LIKE '%company.com'")["n"].iloc[0] == 0
    assert store.query("SELECT count(*) AS n FROM identity_map WHERE source_id = 'user:235323'")["n"].iloc[0] == 0


def test_comment_authors_do_not_depend_on_the_order_files_arrive(tmp_path: Path) -> None:
    def run(order: list[Path]) -> dict[str, dict[str, object]]:
        s = Store(":memory:")
        ingest_source_files(s, "salesforce", sorted((VENDORS / "salesforce").glob("*.csv")))
        for f in order:  # one file per ingest, as incremental runs do
            ingest_source_files(s, "zendesk", [f])
        out = _comments(s)
        s.close()
        return out

    files = [*FILES, *COMMENTS]
    first_users = sorted(files, key=lambda p: p.name != "users.json")
    last_users = sorted(files, key=lambda p: p.name == "users.json")
    assert run(first_users) == run(last_users)


def test_audits_give_comments_and_status_changes(store: Store) -> None:
    r = {x.table: x for x in ingest_vendor_file(store, VENDORS / "zendesk" / "audits.json", reader="zendesk")}
    assert (r["events"].read, r["events"].loaded) == (3, 3)  # 2 comments + 1 status change; Create and Notification events are not conversation
    ev = store.query("SELECT event_id, event, timestamp, properties FROM events WHERE source = 'zendesk' ORDER BY event_id").to_dict("list")
    assert ev["event_id"] == ["zendesk:change:1564251", "zendesk:comment:1564245", "zendesk:comment:1564250"]
    assert json.loads(ev["properties"][0]) == {"ticket_id": "zendesk:35438", "from": "new", "to": "solved"}
    assert json.loads(ev["properties"][2])["body"] == "Invoice resent to the billing address."
    assert ev["timestamp"][2].isoformat() == "2011-05-03T11:00:00+00:00"  # the audit's time


def test_one_comment_from_two_kinds_loads_once(store: Store, tmp_path: Path) -> None:
    """Zendesk gives a comment the id of its audit event: the comments file and the audits file carry the same comment."""
    audit = {"id": 1, "ticket_id": 77, "created_at": "2024-01-01T10:00:00Z", "author_id": 5, "via": {"channel": "web"},
             "events": [{"id": 900, "type": "Comment", "author_id": 5, "body": "hello", "public": True}]}  # fmt: skip
    comment = {"id": 900, "type": "Comment", "author_id": 5, "body": "hello", "public": True, "created_at": "2024-01-01T10:00:00Z", "via": {"channel": "web"}}
    (tmp_path / "audits.json").write_text(json.dumps({"audits": [audit]}))
    (tmp_path / "77.json").write_text(json.dumps({"comments": [comment]}))
    ingest_vendor_file(store, tmp_path / "audits.json", reader="zendesk")
    r = {x.table: x for x in ingest_vendor_file(store, tmp_path / "77.json", reader="zendesk")}
    assert (r["events"].loaded, r["events"].duplicate, r["events"].quarantined) == (0, 1, 0)


@pytest.mark.parametrize(
    ("name", "doc", "ticket"),
    [
        ("comments.json", {"ticket_id": 12, "comments": []}, "12"),  # top-level ticket_id
        ("comments.json", {"comments": [{"ticket_id": 13}]}, "13"),  # the comment's own
        ("comments-page-2-ticket-14.json", {"comments": []}, "14"),  # several numbers: the one after "ticket"
        ("15/comments.json", {"comments": []}, "15"),  # the folder
    ],
)
def test_where_the_ticket_id_comes_from(store: Store, tmp_path: Path, name: str, doc: dict[str, object], ticket: str) -> None:
    comment = {"id": 1, "author_id": 5, "body": "hi", "public": True, "created_at": "2024-01-01T00:00:00Z"}
    comments = doc["comments"] or [{}]
    doc = {**doc, "comments": [{**comment, **c} for c in comments]}  # type: ignore[attr-defined]
    f = tmp_path / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(doc))
    ingest_vendor_file(store, f, reader="zendesk")
    assert json.loads(store.table("events", where="source = 'zendesk'")["properties"].iloc[0])["ticket_id"] == f"zendesk:{ticket}"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("comments.json", "neither its name nor its folder's holds a ticket number"),
        ("comments_page_2_of_3.json", r"its name holds several numbers \(2, 3\) and none follows 'ticket'"),
    ],
)
def test_comments_file_without_a_ticket_is_refused(store: Store, tmp_path: Path, name: str, message: str) -> None:
    f = tmp_path / name
    f.write_text(json.dumps({"comments": [{"id": 1, "author_id": 5, "body": "hi", "public": True, "created_at": "2024-01-01T00:00:00Z"}]}))
    with pytest.raises(SourceFormatError, match=message) as info:
        ingest_vendor_file(store, f, reader="zendesk")
    assert str(f) in str(info.value)
    assert "nothing was loaded" in str(info.value)
    assert store.table("events", where="source = 'zendesk'").empty


def test_bad_comments_are_quarantined_and_the_file_goes_on(store: Store, tmp_path: Path) -> None:
    good = {"id": 1, "author_id": 5, "body": "hi", "public": True, "created_at": "2024-01-01T00:00:00Z"}
    recs = [good, {**good, "id": 2, "created_at": "yesterday"}, {k: v for k, v in good.items() if k != "id"}, "a string", {**good, "id": 4, "body": "nul \u0000"}]
    f = tmp_path / "ticket_88_comments.json"
    f.write_text('{"comments": [\n' + ",\n".join(json.dumps(r) for r in recs) + "\n]}")
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert (r["events"].read, r["events"].loaded, r["events"].quarantined) == (5, 1, 4)
    q = store.query("SELECT line, reason FROM quarantine ORDER BY line")
    assert q["line"].tolist() == [3, 4, 5, 6]
    assert q["reason"].tolist() == [
        "created_at: expected an ISO-8601 time, found 'yesterday'",
        "missing required field(s) id of a Zendesk comment",
        "expected a JSON object per comment, found str",
        "body: a NUL character (\\u0000), which text columns refuse",
    ]


def test_ticket_body_keeps_the_customers_words_only(store: Store, tmp_path: Path) -> None:
    """A full export's inline comments: the requester's later public comments join the body; agents' replies and notes do not."""
    comments = [
        {"id": 1, "author_id": 5, "body": "My printer is on fire.", "public": True},
        {"id": 2, "author_id": 9, "body": "Sorry to hear that, we are on it.", "public": True},
        {"id": 3, "author_id": 9, "body": "internal: check the warranty", "public": False},
        {"id": 4, "author_id": 5, "body": "It is still burning!", "public": True},
    ]
    t = {"id": 1, "created_at": "2024-01-01T00:00:00Z", "subject": "Fire", "status": "open", "requester_id": 5, "description": "My printer is on fire.", "comments": comments}
    f = tmp_path / "tickets.json"
    f.write_text(json.dumps({"tickets": [t]}))
    ingest_vendor_file(store, f, reader="zendesk")
    assert store.table("tickets", where="ticket_id = 'zendesk:1'")["body"].tolist() == ["My printer is on fire.\n\nIt is still burning!"]


def test_every_file_kind_of_every_reader_is_listed_in_the_sources_page() -> None:
    from journeylib.io.registry import vendor_readers

    page = (Path(__file__).parents[1] / "docs" / "sources.md").read_text(encoding="utf-8")
    table = page.split("### Every file kind", 1)[1].split("\n### ", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("| `")]
    listed = {(r[0].strip("`"), k.strip().strip("`")) for r in rows for k in r[1].split(",")}
    kinds = {(name, kind) for name, reader in vendor_readers().items() for kind in reader.kinds}
    assert kinds - listed == set()
    assert all(r[3] for r in rows)  # each with the endpoint that produces it
