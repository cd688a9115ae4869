BEGIN TRANSACTION;
CREATE TABLE tracker_changes (
    session_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    change TEXT NOT NULL,
    PRIMARY KEY (session_id, version)
) WITHOUT ROWID;
INSERT INTO "tracker_changes" VALUES('chat',2,'{"change":1,"ops":[["set",["tracker","previous_response_id"],"resp_1b"],["set",["tracker","responses_observed"],4],["extend",["tracker","server_item_ids"],["fc_1","msg_1"]],["extend",["tracker","answered_call_ids"],["call_1"]],["set",["tracker","calls","call_1"],"fc_1"],["set",["tracker","fingerprints","35371608c460b7389d55afcc4ac73c76"],1]]}');
INSERT INTO "tracker_changes" VALUES('chat',3,'{"change":1,"ops":[["set",["lease"],{"owner":"vm:18790:b456a7307f37","expires_at":1060.0}]]}');
INSERT INTO "tracker_changes" VALUES('chat',4,'{"change":1,"ops":[["set",["lease"],null],["set",["tracker","previous_response_id"],"resp_2b"],["set",["tracker","responses_observed"],6],["extend",["tracker","server_item_ids"],["fc_2","msg_2"]],["extend",["tracker","answered_call_ids"],["call_2"]],["set",["tracker","calls","call_2"],"fc_2"],["set",["tracker","fingerprints","7d632a6fbf4282483ada0742ffe3ce5a"],1]]}');
CREATE TABLE tracker_schema (version INTEGER NOT NULL);
INSERT INTO "tracker_schema" VALUES(3);
CREATE TABLE tracker_sessions (
    session_id TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL,
    epoch TEXT
);
INSERT INTO "tracker_sessions" VALUES('chat',4,'{"format":"tracker.session","version":1,"tracker":{"format":"tracker.state","version":3,"previous_response_id":"resp_0b","conversation_id":null,"server_item_ids":["fc_0","msg_0"],"calls":{"call_0":"fc_0"},"answered_call_ids":["call_0"],"pending_call_ids":[],"fingerprints":{"0d862334b0f3d9ddcba62dddf2a5b092":1},"responses_observed":2,"whole_chain":true,"compacted_call_ids":[],"last_compaction_id":null,"window":null,"history":[]},"lease":null,"turn":null}',1764320000.0,'267c01984ba14392');
COMMIT;
