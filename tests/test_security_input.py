"""Findings 4 and 5 of issue 12: no open redirect after login, and user input that used to
give a 500 gets a clear answer (an error beside the field, or 404)."""
from __future__ import annotations

import pytest

from tests import web_support
from tests.web_support import STAFF, field_errors, log_in, post_form

web, staff, admin = web_support.web, web_support.staff, web_support.admin  # shared fixtures


@pytest.mark.parametrize("target", ["/%09/evil.example/", "/%0d%0a/evil.example/",
                                    "/%0aLocation:%20http://evil.example/", "/%5Cevil.example",
                                    "/\\/evil.example", "%2F%2Fevil.example", "https:evil.example",
                                    "/ /evil.example"])
def test_the_login_never_redirects_off_the_site_whatever_next_holds(web, target):
    response = log_in(web.client(), *STAFF, next_path=target)
    assert response.status_code == 302 and response.headers["Location"] == "/", target


def test_the_login_still_returns_to_a_page_with_a_query(web):
    response = log_in(web.client(), *STAFF, next_path="/contacts%3Fq%3D%E5%B1%B1")
    assert response.headers["Location"].startswith("/contacts?q=")


@pytest.mark.parametrize("text", ["{", "}", "{0}", "{name!r}", "{name.__class__}",
                                  "{name:>9999999}", "こんにちは {name", "{} です"])
def test_braces_in_the_compose_text_are_an_error_beside_the_text(web, staff, text):
    response = post_form(staff, "/send", {"text": text, "groups": [str(web.group_id)],
                                          "priority": "routine"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    errors = field_errors(page, "text")
    assert errors and any("{" in e or "}" in e for e in errors), page
    assert web.count("broadcasts") == 0


@pytest.mark.parametrize("path", ["/broadcasts?page=99999999999999999999",
                                  "/broadcasts?page=-5", "/broadcasts?page=x"])
def test_a_huge_or_odd_page_number_shows_a_page(web, staff, path):
    assert staff.get(path).status_code == 200


def test_a_huge_audit_page_number_shows_a_page(web, admin):
    assert admin.get("/admin/audit?page=99999999999999999999").status_code == 200


@pytest.mark.parametrize("path", ["/templates/99999999999999999999999",
                                  "/broadcasts/99999999999999999999999",
                                  "/contacts/99999999999999999999999",
                                  "/broadcasts/99999999999999999999999/calls"])
def test_an_id_too_big_for_the_database_is_not_found(web, staff, path):
    assert staff.get(path).status_code == 404
