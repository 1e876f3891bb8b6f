from __future__ import annotations

import pytest

from tests.web.conftest import make_item


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_pages_render_for_an_editor(app, client, login):
    login(client, "ed")
    item = make_item(app, stage="scheduled")
    for path in ("/items", "/items/new", f"/items/{item}", "/calendar", "/calendar?view=month", "/dashboard", "/tokens"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:2000])
        assert "信息公开发布平台" in r.text
