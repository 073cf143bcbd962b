"""The web front desk at ``/desk``: log in, the ticket inbox, a ticket's page and actions, flats and
their binding codes, the month's report. Server-rendered (Jinja2); a little JavaScript only makes it nicer.

Every page but ``/desk/login`` needs a session: a GET without one is sent to the login page, any
other method gets 401. Every POST carries the session's CSRF token (the login form a signed
one of its own); a POST without it, or with another, is refused with 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.app import App
from bot.channels.photos import PhotoFetcher, Unavailable, image_kind
from bot.desk import accounts, domain, links
from bot.desk.accounts import CookieSigner, Policy, Refused
from bot.desk.domain import DeskError, Filters
from bot.desk.qr import qr_png
from bot.desk.reports import ReportCache
from bot.intake import Intake
from data.clock import local
from data.db import unit_of_work
from data.kinds import TicketKind, TicketStatus
from flows.domain.binding_codes import STATE_NAMES, deep_link
from flows.reports import page as report_page
from flows.reports.charts import CHARTS
from flows.reports.kpi import Period
from flows.reports.report import Report

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
COOKIE, LOGIN_COOKIE = "propbot_desk", "propbot_desk_login"
ACTIONS = ("claim", "assign", "done", "reopen", "close", "reply")
MONTH = re.compile(r"\d{4}-\d{2}")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Visitor:
    """The logged-in staff member of a request."""

    token: str
    staff_id: int
    compound_id: int
    name: str
    role: str
    csrf: str
    flash: str


Handler = Callable[[Request, Visitor, FormData | None], Awaitable[Response]]


class SecurityHeaders:
    """The same headers on every desk response: no framing, no inline script, no caching."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend((k.lower().encode(), v.encode()) for k, v in HEADERS.items())
            await send(message)

        await self.app(scope, receive, with_headers)


class Desk:
    def __init__(self, app: App, intake: Intake, photos: PhotoFetcher | None = None) -> None:
        self.app, self.intake, self.photos = app, intake, photos
        settings = app.settings
        self.policy = Policy(
            attempts=settings.desk_lockout_attempts,
            window=timedelta(minutes=settings.desk_lockout_window_min),
            lock=timedelta(minutes=settings.desk_lockout_min),
            lifetime=timedelta(hours=settings.desk_session_hours),
        )
        self.secure = settings.desk_secure_cookie
        self._signer: CookieSigner | None = None
        self.reports = ReportCache(app.clock, timedelta(minutes=settings.desk_report_cache_min))
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.globals.update(
            kinds=list(TicketKind), statuses=list(TicketStatus), code_states=STATE_NAMES
        )

    def mount(self) -> Mount:
        page = self._page
        routes = [
            Route("/", page(self.home)),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", page(self.logout), methods=["POST"]),
            Route("/go/{number}", self.go, methods=["GET"]),
            Route("/tickets", page(self.inbox)),
            Route("/tickets/{number}", page(self.ticket)),
            Route("/tickets/{number}/photos/{index:int}", page(self.photo, flash=False)),
            Route("/tickets/{number}/{action}", page(self.act), methods=["POST"]),
            Route("/units", page(self.units)),
            Route("/units/{unit_id:int}", page(self.unit)),
            Route("/units/{unit_id:int}/codes", page(self.issue_code), methods=["POST"]),
            Route("/codes", page(self.codes)),
            Route("/codes/{code}", page(self.code)),
            Route("/codes/{code}/qr.png", page(self.qr, flash=False)),
            Route("/codes/{code}/revoke", page(self.revoke), methods=["POST"]),
            Route("/report", page(self.report)),
            Route("/report/kpi.csv", page(self.report_csv, flash=False)),
            Route("/report/{chart}.png", page(self.report_chart, flash=False)),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        return Mount("/desk", app=Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)]))

    # -- sessions ---------------------------------------------------------------------------------
    async def signer(self) -> CookieSigner:
        if self._signer is None:
            key = await self.intake.run(
                accounts.signing_key, self.app.sessions, self.app.settings.desk_secret
            )
            self._signer = CookieSigner(key)
        return self._signer

    def _page(self, handler: Handler, flash: bool = True) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for a logged-in staff member; the login page (GET) or 401 for anyone else,
        403 for a POST without the session's CSRF token. ``flash``: a page that shows (and so
        uses up) the message the last action left."""

        async def guarded(request: Request) -> Response:
            token = (await self.signer()).token(request.cookies.get(COOKIE))
            shows = flash and request.method == "GET"
            visitor = await self.intake.run(self._visitor, token, shows) if token else None
            if visitor is None:
                if request.method != "GET":
                    return PlainTextResponse("请先登录", status_code=401)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/desk/login?next={quote(target, safe='')}", status_code=303)
            form = None
            if request.method == "POST":
                form = await request.form()
                if not hmac.compare_digest(str(form.get("csrf", "")), visitor.csrf):
                    log.warning("desk: a POST to %s without a valid CSRF token refused", request.url.path)
                    return PlainTextResponse("请求已失效，请刷新页面后重试", status_code=403)
            return await handler(request, visitor, form)

        return guarded

    def _visitor(self, token: str, pop_flash: bool) -> Visitor | None:
        with unit_of_work(self.app.sessions) as store:
            found = accounts.session_for(store, token, self.app.clock.now())
            if found is None:
                return None
            flash = found.flash or ""
            if pop_flash and flash:
                found.flash = None
            staff = found.account.staff
            return Visitor(
                token,
                staff.id,
                staff.compound_id,
                staff.name,
                found.account.role,
                found.csrf,
                flash if pop_flash else "",
            )

    async def _flash(self, visitor: Visitor, text: str) -> None:
        def save() -> None:
            with unit_of_work(self.app.sessions) as store:
                found = accounts.session_for(store, visitor.token, self.app.clock.now())
                if found is not None:
                    found.flash = text[:500]

        await self.intake.run(save)

    def render(
        self, request: Request, name: str, visitor: Visitor | None, status: int = 200, **context: Any
    ) -> Response:
        return self.templates.TemplateResponse(request, name, {"me": visitor, **context}, status_code=status)

    # -- logging in and out -----------------------------------------------------------------------
    async def login_form(
        self, request: Request, error: str = "", status: int = 200, login: str = "", target: str = ""
    ) -> Response:
        nonce = secrets.token_urlsafe(24)
        response = self.render(
            request,
            "login.html",
            None,
            status,
            csrf=nonce,
            error=error,
            login=login,
            next=_safe_next(target or request.query_params.get("next", "")),
        )
        signed = (await self.signer()).sign_login(nonce)
        response.set_cookie(
            LOGIN_COOKIE,
            signed,
            max_age=3600,
            path="/desk/login",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        signer = await self.signer()
        nonce = signer.login_nonce(request.cookies.get(LOGIN_COOKIE))
        if nonce is None or not hmac.compare_digest(str(form.get("csrf", "")), nonce):
            return PlainTextResponse("登录页已失效，请刷新后重试", status_code=403)
        login, password = str(form.get("login", "")), str(form.get("password", ""))
        outcome = await self.intake.run(self._authenticate, login, password)
        if isinstance(outcome, Refused):
            if outcome.locked_until is not None:
                until = f"{local(outcome.locked_until):%H:%M}"
                error = f"登录失败次数过多，账号已锁定至 {until}，请稍后再试或联系经理"
            else:
                error = "姓名或密码不正确"
            status = 401 if outcome.locked_until is None else 429
            return await self.login_form(request, error, status, login[:50], str(form.get("next", "")))
        response = RedirectResponse(_safe_next(str(form.get("next", ""))) or "/desk/tickets", status_code=303)
        response.set_cookie(
            COOKIE,
            signer.sign(outcome),
            max_age=int(self.policy.lifetime.total_seconds()),
            path="/desk",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )
        response.delete_cookie(LOGIN_COOKIE, path="/desk/login")
        return response

    def _authenticate(self, login: str, password: str) -> str | Refused:
        """The new session's token, or why not."""
        now = self.app.clock.now()
        with unit_of_work(self.app.sessions) as store:
            outcome = accounts.authenticate(store, login, password, now, self.policy)
            if isinstance(outcome, Refused):
                log.info("desk: login refused%s", " (locked)" if outcome.locked_until else "")
                return outcome  # the failure count is committed with the transaction
            return accounts.open_session(store, outcome, now, self.policy)

    async def logout(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        def close() -> None:
            with unit_of_work(self.app.sessions) as store:
                accounts.close_session(store, visitor.token)

        await self.intake.run(close)
        response = RedirectResponse("/desk/login", status_code=303)
        response.delete_cookie(COOKIE, path="/desk")
        return response

    # -- pages ------------------------------------------------------------------------------------
    async def go(self, request: Request) -> Response:
        """A signed link from outside the desk (bot.desk.links): on to the ticket's page, which asks
        for a login as every page does; a tampered or expired link is refused with a page."""
        number, query = request.path_params["number"], request.query_params
        key = await self.intake.run(accounts.signing_key, self.app.sessions, self.app.settings.desk_secret)
        why = links.refusal(key, number, query.get("exp", ""), query.get("sig", ""), self.app.clock.now())
        if why is not None:
            log.warning("desk: a link to a ticket refused (%s)", why)
            return self.render(request, "error.html", None, 403, message=why)
        return RedirectResponse(f"/desk/tickets/{number}", status_code=303)

    async def home(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        return RedirectResponse("/desk/tickets", status_code=303)

    async def inbox(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        filters = _filters(request)
        inbox = await self.intake.run(domain.inbox, self.app, filters)
        query = {k: v for k, v in request.query_params.items() if k != "page"}
        return self.render(
            request, "inbox.html", visitor, inbox=inbox, filters=filters, query=urlencode(query)
        )

    async def ticket(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        number = request.path_params["number"]
        try:
            page = await self.intake.run(domain.ticket_page, self.app, number, visitor.staff_id)
        except DeskError as exc:
            return self.render(request, "error.html", visitor, 404, message=str(exc))
        return self.render(request, "ticket.html", visitor, t=page)

    async def photo(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        number, index = request.path_params["number"], request.path_params["index"]
        ref = await self.intake.run(domain.photo_ref, self.app, number, index)
        if ref is None or self.photos is None:
            return PlainTextResponse("没有这张照片", status_code=404)
        try:
            data = await self.photos.fetch(ref)
        except Unavailable as exc:
            return PlainTextResponse(
                f"照片暂时取不到：{exc.reason}", status_code=502 if exc.temporary else 404
            )
        kind = image_kind(data) or "jpeg"
        return Response(data, media_type=f"image/{kind}", headers={"Cache-Control": "private, max-age=3600"})

    async def act(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        assert form is not None
        number, action = request.path_params["number"], request.path_params["action"]
        if action not in ACTIONS:
            return PlainTextResponse("没有这个操作", status_code=404)
        target = str(form.get("staff", ""))
        try:
            note = await self.intake.run(
                domain.act, self.app, number, visitor.staff_id, action, str(form.get("text", "")),
                int(target) if target.isdigit() else None,
            )  # fmt: skip
        except DeskError as exc:
            note = f"未完成：{exc}"
        await self._flash(visitor, note)
        return RedirectResponse(f"/desk/tickets/{quote(number)}", status_code=303)

    async def units(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        query = request.query_params.get("q", "").strip()
        hits = await self.intake.run(domain.find_units, self.app, query) if query else []
        if len(hits) == 1:
            return RedirectResponse(f"/desk/units/{hits[0].id}", status_code=303)
        return self.render(request, "units.html", visitor, q=query, hits=hits)

    async def unit(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        try:
            page = await self.intake.run(domain.unit_page, self.app, request.path_params["unit_id"])
        except DeskError as exc:
            return self.render(request, "error.html", visitor, 404, message=str(exc))
        return self.render(request, "unit.html", visitor, u=page)

    async def issue_code(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        assert form is not None
        unit_id = request.path_params["unit_id"]
        resident = str(form.get("resident", ""))
        try:
            code = await self.intake.run(
                domain.issue_code, self.app, unit_id, int(resident) if resident.isdigit() else None,
                str(form.get("expires", "7d")), visitor.staff_id,
            )  # fmt: skip
        except DeskError as exc:
            await self._flash(visitor, f"未完成：{exc}")
            return RedirectResponse(f"/desk/units/{unit_id}", status_code=303)
        await self._flash(visitor, f"已生成绑定码 {code}")
        return RedirectResponse(f"/desk/codes/{code}", status_code=303)

    async def codes(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        state = request.query_params.get("state", "")
        rows = await self.intake.run(domain.codes, self.app, state if state in STATE_NAMES else "")
        return self.render(request, "codes.html", visitor, rows=rows, state=state)

    async def code(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        try:
            row = await self.intake.run(domain.code, self.app, request.path_params["code"])
        except DeskError as exc:
            return self.render(request, "error.html", visitor, 404, message=str(exc))
        return self.render(request, "code.html", visitor, c=row, link=self._link(row.code))

    async def qr(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        try:
            row = await self.intake.run(domain.code, self.app, request.path_params["code"])
        except DeskError:
            return PlainTextResponse("没有这个绑定码", status_code=404)
        return Response(qr_png(self._link(row.code)), media_type="image/png")

    def _link(self, code: str) -> str:
        return deep_link(code, self.app.settings.telegram_bot_username)

    async def revoke(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        manager = visitor.role == "manager"
        try:
            row = await self.intake.run(
                domain.revoke_code, self.app, request.path_params["code"], visitor.staff_id, manager
            )
            await self._flash(visitor, f"绑定码 {row.code} 已作废")
        except DeskError as exc:
            await self._flash(visitor, f"未完成：{exc}")
        return RedirectResponse(f"/desk/codes/{quote(request.path_params['code'])}", status_code=303)

    # -- the report ------------------------------------------------------------------------------
    def _month(self, request: Request) -> Period | str:
        """The month asked for (default: the last full one), or why it cannot be shown."""
        today = local(self.app.clock.now()).date()
        raw = request.query_params.get("month", "")
        if not raw:
            return Period.month_before(today)
        try:
            period = Period.month(raw) if MONTH.fullmatch(raw) else None
        except ValueError:
            period = None
        if period is None or period.first.year < 2000:
            return f"没有这个月份：{raw[:20]}（格式 YYYY-MM）"
        if period.first > today:
            return f"{period.label}还没有到"
        return period

    def _built(
        self, visitor: Visitor, period: Period
    ) -> tuple[tuple[int, str], Callable[[], Awaitable[Report]]]:
        """The cache key of the visitor's compound's month, and how to build its report."""

        async def build() -> Report:
            return await self.intake.run(domain.report, self.app, visitor.compound_id, period)

        return (visitor.compound_id, f"{period.first:%Y-%m}"), build

    async def report(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        period = self._month(request)
        if isinstance(period, str):
            return self.render(request, "error.html", visitor, 400, message=period)
        found = await self.reports.report(*self._built(visitor, period))
        today = local(self.app.clock.now()).date()
        month = f"{period.first:%Y-%m}"
        following = period.last + timedelta(days=1)
        return self.render(
            request,
            "report.html",
            visitor,
            r=found,
            month=month,
            latest=f"{today:%Y-%m}",
            earlier=f"{period.first - timedelta(days=1):%Y-%m}",
            later=f"{following:%Y-%m}" if following <= today else "",
            partial=period.last >= today,
            cards=report_page.cards(found.kpis),
            head=report_page.BUILDING_HEAD,
            rows=report_page.building_rows(found),
            charts=[(name, caption) for name, (caption, _draw) in CHARTS.items()],
            minutes=self.app.settings.desk_report_cache_min,
        )

    async def report_csv(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        period = self._month(request)
        if isinstance(period, str):
            return PlainTextResponse(period, status_code=400)
        found = await self.reports.report(*self._built(visitor, period))
        name = f"kpi-{period.first:%Y-%m}.csv"
        return Response(
            report_page.kpi_csv(found.kpis),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def report_chart(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        period, chart = self._month(request), request.path_params["chart"]
        if isinstance(period, str) or chart not in CHARTS:
            return PlainTextResponse("没有这张图", status_code=404)
        charts = await self.reports.charts(*self._built(visitor, period))
        return Response(charts[f"{chart}.png"], media_type="image/png")


def _filters(request: Request) -> Filters:
    params = request.query_params
    building = params.get("building", "")
    page = params.get("page", "1")
    return Filters(
        status=params.get("status", "open") or "open",
        kind=params.get("kind", ""),
        building=int(building) if building.isdigit() else None,
        late=params.get("late", "") in ("1", "on", "true"),
        page=int(page) if page.isdigit() else 1,
    )


def _safe_next(target: str) -> str:
    """Only a path inside the desk: never another site (an open redirect)."""
    return (
        target
        if target.startswith("/desk/") and not target.startswith("/desk//") and "\\" not in target
        else ""
    )
