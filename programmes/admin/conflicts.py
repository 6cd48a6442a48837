"""The "Conflicts" page of the rule admin: every programme's current contradictory rules (``programmes.conflicts``),
linked from the rule changelists. For staff who may view earning rules, redemption rules or promotions."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from programmes.conflicts import Conflict, rules_conflicts
from programmes.models import EarningRule, Programme

TEMPLATE = "admin/programmes/rules/conflicts.html"
VIEW_PERMISSIONS = ("programmes.view_earningrule", "programmes.view_redemptionrule", "programmes.view_promotion")


def _rule_row(rule) -> dict:
    opts = rule._meta
    return {
        "kind": opts.verbose_name,
        "name": rule.name,
        "url": reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[rule.pk]),
    }


def _row(conflict: Conflict) -> dict:
    return {
        "severity": conflict.severity,
        "severity_label": conflict.severity_label,
        "message": conflict.message,
        "rules": [_rule_row(conflict.first), _rule_row(conflict.second)],
    }


def conflicts_view(admin_site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    if not any(request.user.has_perm(permission) for permission in VIEW_PERMISSIONS):
        raise PermissionDenied
    now = timezone.now()
    programmes = [
        {"programme": programme, "conflicts": [_row(c) for c in rules_conflicts(programme=programme, at=now)]}
        for programme in Programme.objects.order_by("code")
    ]
    return TemplateResponse(
        request,
        TEMPLATE,
        {
            **admin_site.each_context(request),
            "title": _("Conflicting rules"),
            "opts": EarningRule._meta,
            "programmes": programmes,
            "at": now,
        },
    )
