"""Hand-written cases from the axis definition (docs/scoring.md, design.md): the default rules
must weigh what the work changes, not which words appear.

Written for these tests, not taken from the sandbox generator. Each case says why.
"""

from __future__ import annotations

from typing import Any

import pytest

from itsm_bridge.schema import Label
from itsm_bridge.scoring import Scorer

from .conftest import make_item

B, IN = Label.BUSINESS, Label.INWARD

CASES: list[tuple[str, str, dict[str, Any], Label]] = [
    # -- business-facing: a new or improved capability for the business or its customers --
    ("Upgrade checkout to support Apple Pay", "task", {}, B),  # upgrade *to support* new payment
    ("Add self-service returns to the customer portal", "task", {}, B),
    ("Launch the loyalty app in Norway", "task", {}, B),
    ("Let customers track their orders by SMS", "task", {}, B),
    ("Build a sales forecast dashboard for regional managers", "task", {}, B),
    ("Automate invoice approval for the finance team", "task", {}, B),
    ("Onboard the new Benelux business unit onto the ERP", "project", {}, B),
    ("Introduce gift cards in the webshop", "task", {}, B),
    ("Enable click and collect for store customers", "task", {}, B),
    ("Personalise product recommendations on the home page", "task", {}, B),
    ("Allow members to redeem loyalty points at checkout", "task", {}, B),
    ("New supplier portal for purchase order confirmations", "project", {}, B),
    ("Add appointment booking for fitting sessions to the mobile app", "task", {}, B),
    ("Support multi-currency pricing for the German market", "task", {}, B),
    ("As a customer I want to save my basket so that I can finish later", "task", {}, B),
    ("Digitise the paper returns form for warehouse staff", "task", {}, B),
    ("Customer churn analytics for the marketing team", "task", {}, B),
    ("Expand the online store into Sweden", "project", {}, B),
    ("Add PayPal as a payment method", "task", {}, B),
    ("Pilot a chatbot for customer service questions", "task", {}, B),
    ("Offer subscription delivery of outdoor gear", "task", {}, B),
    ("Omnichannel programme", "project", {"extra": {"investment": {"business_case": True}}}, B),
    # Explicit investment fields decide on their own, whatever the title says.
    (
        "Replace the warehouse scanners",
        "project",
        {"extra": {"investment": {"portfolio_category": "grow"}}},
        B,
    ),
    (
        "Fix and patch everything",
        "task",
        {"extra": {"investment": {"category_raw": "Transform"}}},
        B,
    ),
    # -- inward-facing: keeping existing IT running and safe --
    ("Patch the CRM servers used by sales", "change", {}, IN),  # patching, whoever uses it
    ("Renew TLS certificate for the Online Store", "change", {}, IN),  # renewal, on a shop
    ("Restore checkout after payment gateway timeout", "incident", {}, IN),  # restoration
    ("Restore checkout after payment gateway timeout", "task", {}, IN),  # ... even as a task
    ("Upgrade PostgreSQL from 11 to 15 before end of support", "change", {}, IN),
    ("Rotate the API keys for the payment provider", "change", {}, IN),
    ("Quarterly disaster recovery test for the data warehouse", "change", {}, IN),
    ("Investigate intermittent VPN disconnects", "problem", {}, IN),
    ("Fix crash when opening the order history page", "task", {}, IN),  # defect on a shop page
    ("Replace failed disk in storage array", "change", {}, IN),
    ("Set up alerting for checkout latency", "task", {}, IN),
    ("Reduce cloud spend by rightsizing idle VMs", "task", {}, IN),
    ("Decommission the legacy fax server", "change", {}, IN),
    ("Refactor the pricing service to remove dead code", "task", {}, IN),
    ("Fix flaky integration tests in the build pipeline", "task", {}, IN),
    ("Reset password for warehouse scanner account", "request", {}, IN),
    ("New laptop for new starter in accounting", "request", {}, IN),  # "new", but provisioning
    ("Apply Windows security updates to point-of-sale terminals", "change", {}, IN),
    ("Extend disk on the ERP database server", "change", {}, IN),
    ("Renew the Microsoft 365 licences", "request", {}, IN),
    ("Email not syncing on mobile phone", "incident", {}, IN),
    ("Remediate penetration test findings on the customer portal", "task", {}, IN),
    ("Migrate file shares to the new NAS", "change", {}, IN),
    ("Back up the loyalty database before the upgrade", "change", {}, IN),
    ("Checkout down for all customers", "incident", {}, IN),
    ("Add monitoring to checkout", "task", {}, IN),  # "add", but what is added is monitoring
    ("Capacity planning for the Black Friday peak", "task", {}, IN),
    ("Deploy pricing hotfix (no customer impact)", "change", {}, IN),
    (
        "Modernise the customer experience platform",
        "project",
        {"extra": {"investment": {"portfolio_category": "run"}}},
        IN,
    ),
    ("Add a new firewall rule for the partner SFTP", "change", {}, IN),
    ("Install Visio for the marketing team", "request", {}, IN),
    ("Create shared mailbox for the sales team", "request", {}, IN),
]


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer()


@pytest.mark.parametrize(("title", "kind", "fields", "expected"), CASES)
def test_default_rules_weigh_what_the_work_changes(
    scorer: Scorer, title: str, kind: str, fields: dict[str, Any], expected: Label
) -> None:
    verdict = scorer.score_one(make_item(title, kind, **fields)).scoring
    explanation = "; ".join(f"{r.rule} {r.weight:+} {r.evidence}" for r in verdict.reasons)
    assert verdict.label is expected, f"{title!r} -> {verdict.p_business:.2f}: {explanation}"


def test_there_are_enough_cases() -> None:
    labels = [case[3] for case in CASES]
    assert labels.count(B) >= 20
    assert labels.count(IN) >= 25


def test_the_examples_in_docs_concepts_md(scorer: Scorer) -> None:
    """The worked examples of docs/concepts.md come out as that page says."""
    items = [
        make_item("Checkout page times out", "incident", key="INC1"),
        make_item("Renew the wildcard TLS certificate", "change", key="CHG1"),
        make_item(
            "One-click reorder for loyalty members",
            key="EPIC1",
            extra={"issue_type": "Epic", "investment": {"category_raw": "Grow"}},
        ),
        make_item("Refactor basket service", key="S1", parent_key="EPIC1"),
        make_item("Migrate the data warehouse to the new cluster", "project", key="PRJ1"),
        make_item(
            "New sales region", "project", key="PRJ2", extra={"investment": {"business_case": True}}
        ),
    ]
    expected = {"INC1": IN, "CHG1": IN, "EPIC1": B, "S1": B, "PRJ1": IN, "PRJ2": B}
    got = {s.key: s.scoring.label for s in scorer.score(items)}
    assert got == expected
    # Without the epic's investment field, its title alone still says who benefits.
    alone = scorer.score_one(make_item("One-click reorder for loyalty members")).scoring
    assert alone.label is B
