"""Access tokens (``/cgi-bin/token``, ``/cgi-bin/stable_token``) and the quota query of the WeChat sandbox."""

from __future__ import annotations

import secrets
import time

from channels.sandbox.wechat.state import Answer, Token


class TokensMixin:
    """Issues tokens, expires the earlier ones after ``token_overlap`` and checks the token of each call."""

    def _require_token(self, query: dict[str, str]) -> None:
        value = query.get("access_token")
        if not value:
            raise Answer(41001)
        with self._lock:
            tok = self._s.tokens.get(value)
            if tok is None:
                raise Answer(40001)
            if tok.expires_at <= time.time():
                raise Answer(42001 if value == self._s.latest_token else 40001)

    def _new_token(self) -> Token:
        now = time.time()
        with self._lock:
            for tok in self._s.tokens.values():
                tok.expires_at = min(tok.expires_at, now + self.token_overlap)
            tok = Token("SBX_" + secrets.token_urlsafe(48), now + self.token_ttl)
            self._s.tokens[tok.value] = tok
            self._s.latest_token = tok.value
            return tok

    def _check_credentials(self, appid: str | None, secret: str | None) -> None:
        if appid != self.appid:
            raise Answer(40013)
        if secret != self.secret:
            raise Answer(40125)

    def r_token(self, method, query, headers, body):
        if query.get("grant_type") != "client_credential":
            raise Answer(40002)
        self._check_credentials(query.get("appid"), query.get("secret"))
        tok = self._new_token()
        return {"access_token": tok.value, "expires_in": self.token_ttl}

    def r_stable_token(self, method, query, headers, body):
        data = self._body_json(body)
        if data.get("grant_type") != "client_credential":
            raise Answer(40002)
        self._check_credentials(data.get("appid"), data.get("secret"))
        with self._lock:
            latest = self._s.tokens.get(self._s.latest_token or "")
            if not data.get("force_refresh") and latest is not None and latest.expires_at > time.time():
                return {"access_token": latest.value, "expires_in": int(latest.expires_at - time.time())}
        tok = self._new_token()
        return {"access_token": tok.value, "expires_in": self.token_ttl}

    def r_quota_get(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            used = self._s.calls.get(str(data.get("cgi_path")), 0)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "quota": {"daily_limit": 100000, "used": used, "remain": 100000 - used},
        }
