"""A QuickFIX (C++, Python binding) FIX 4.4 initiator that tests/fix_quickfix.rs drives.

Usage: initiator.py WORKDIR DICTIONARY SENDER TARGET ACCOUNT PASSWORD

Reads one JSON command per stdin line and writes one JSON event per stdout line, so that
the Rust test interleaves the FIX session with a binary-protocol session of its own.

Commands:
  {"cmd": "connect", "addr": "HOST:PORT", "next_target": N}
                                            a new SocketInitiator on the same FileStore
                                            (sequence numbers persist across connects);
                                            next_target (optional) first lowers the next
                                            MsgSeqNum expected from the engine, so that
                                            QuickFIX answers the engine's Logon with a
                                            ResendRequest
  {"cmd": "disconnect"}                     initiator.stop(): Logout, wait for the answer
  {"cmd": "send", "type": "D", "fields": [[tag, "value"], ...]}
                                            an application message; value "$now" is the
                                            current UTC timestamp
  {"cmd": "seqnums"}                        -> {"event": "seqnums", "sender": S, "target": T}
  {"cmd": "quit"}

Events: {"event": "ready"}, {"event": "logon"}, {"event": "logout"},
  {"event": "admin_in"|"admin_out"|"app_in"|"app_out", "type": MSGTYPE,
   "fields": {"TAG": "value", ...}} (a repeated tag keeps its first value),
  {"event": "sent", "ok": bool}, {"event": "error", "text": ...}.
QuickFIX itself validates everything the engine sends against DICTIONARY; a message it
finds invalid is answered with a session Reject, visible here as an "admin_out" of type "3"
(the reason is in WORKDIR/log/*.event.current.log).
"""

import datetime
import json
import os
import sys
import threading

import quickfix as fix

OUT = threading.Lock()


def emit(event, **fields):
    with OUT:
        sys.stdout.write(json.dumps(dict(event=event, **fields)) + "\n")
        sys.stdout.flush()


def parse(message):
    """A message's fields as {tag: value} (the first value of a repeated tag) and its type."""
    fields = {}
    for part in message.toString().split("\x01"):
        if "=" in part:
            tag, value = part.split("=", 1)
            fields.setdefault(tag, value)
    return fields.get("35", ""), fields


class App(fix.Application):
    def __init__(self, account, password):
        super().__init__()
        self.account = account
        self.password = password
        self.session_id = None

    def onCreate(self, session_id):
        self.session_id = session_id

    def onLogon(self, session_id):
        emit("logon")

    def onLogout(self, session_id):
        emit("logout")

    def toAdmin(self, message, session_id):
        msg_type = fix.MsgType()
        message.getHeader().getField(msg_type)
        if msg_type.getValue() == fix.MsgType_Logon:
            message.setField(fix.Username(self.account))
            message.setField(fix.Password(self.password))
        kind, fields = parse(message)
        emit("admin_out", type=kind, fields=fields)

    def fromAdmin(self, message, session_id):
        kind, fields = parse(message)
        emit("admin_in", type=kind, fields=fields)

    def toApp(self, message, session_id):
        kind, fields = parse(message)
        emit("app_out", type=kind, fields=fields)

    def fromApp(self, message, session_id):
        kind, fields = parse(message)
        emit("app_in", type=kind, fields=fields)


def settings_text(workdir, dictionary, sender, target, addr):
    host, port = addr.rsplit(":", 1)
    return "\n".join(
        [
            "[DEFAULT]",
            "ConnectionType=initiator",
            f"FileStorePath={os.path.join(workdir, 'store')}",
            f"FileLogPath={os.path.join(workdir, 'log')}",
            "ReconnectInterval=1",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            "UseDataDictionary=Y",
            f"DataDictionary={dictionary}",
            # Tag 7928 (self-trade prevention) is ours; everything else is checked.
            "ValidateUserDefinedFields=N",
            "ResetOnLogon=N",
            "ResetOnLogout=N",
            "ResetOnDisconnect=N",
            "PersistMessages=Y",
            "HeartBtInt=2",
            "LogonTimeout=5",
            "LogoutTimeout=5",
            "",
            "[SESSION]",
            "BeginString=FIX.4.4",
            f"SenderCompID={sender}",
            f"TargetCompID={target}",
            f"SocketConnectHost={host}",
            f"SocketConnectPort={port}",
            "",
        ]
    )


def now():
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y%m%d-%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def main():
    workdir, dictionary, sender, target, account, password = sys.argv[1:7]
    app = App(account, password)
    session_id = fix.SessionID("FIX.4.4", sender, target)
    initiator = None
    emit("ready", quickfix=getattr(fix, "__version__", "1.16.0"))
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            name = cmd["cmd"]
            if name == "connect":
                path = os.path.join(workdir, "initiator.cfg")
                with open(path, "w") as f:
                    f.write(settings_text(workdir, dictionary, sender, target, cmd["addr"]))
                settings = fix.SessionSettings(path)
                store = fix.FileStoreFactory(settings)
                log = fix.FileLogFactory(settings)
                initiator = fix.SocketInitiator(app, store, settings, log)
                if cmd.get("next_target") is not None:
                    session = fix.Session.lookupSession(session_id)
                    session.setNextTargetMsgSeqNum(int(cmd["next_target"]))
                initiator.start()
                emit("started")
            elif name == "disconnect":
                if initiator is not None:
                    initiator.stop()
                    initiator = None
                emit("stopped")
            elif name == "send":
                message = fix.Message()
                message.getHeader().setField(fix.MsgType(cmd["type"]))
                for tag, value in cmd["fields"]:
                    message.setField(int(tag), now() if value == "$now" else str(value))
                ok = fix.Session.sendToTarget(message, session_id)
                emit("sent", ok=bool(ok))
            elif name == "seqnums":
                session = fix.Session.lookupSession(session_id)
                if session is None:
                    emit("error", text="seqnums: no session (not connected)")
                    continue
                emit(
                    "seqnums",
                    sender=session.getExpectedSenderNum(),
                    target=session.getExpectedTargetNum(),
                )
            elif name == "quit":
                break
            else:
                emit("error", text=f"unknown command {name!r}")
        except Exception as e:  # a bad command must not end the session silently
            emit("error", text=f"{type(e).__name__}: {e}")
    if initiator is not None:
        initiator.stop()
    emit("bye")


if __name__ == "__main__":
    main()
