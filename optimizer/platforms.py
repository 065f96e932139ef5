"""Bid files the ad platforms import, and reading them back as previous bids.

``write_bid_files`` writes into a folder:

* ``bids.csv``: every adjustment with its rules, their contributions and the
  reason in words;
* ``bids/google_ads_editor.csv``: a Google Ads Editor import. Editor matches
  headers ignoring case and spaces, takes a bid adjustment as a plain number
  (25 is +25%) and leaves a blank cell unchanged. Audience rows carry
  ``Campaign``, ``Audience`` and ``Bid Modifier`` (audiences -90 to +900); a
  campaign row carries the device columns (-100 opts a device out, else -90
  to +900). Excluded audiences are not in this file: they are exclusions,
  not bid adjustments (see the API file and bids.csv);
* ``bids/google_ads_api.json``: the same as Google Ads API campaign criteria:
  ``bid_modifier`` from 0.1 to 10.0 (1.0 = no change, 0 opts a device out),
  ``negative: true`` for an excluded audience;
* ``bids/microsoft_ads_bulk.csv``: a Microsoft Advertising bulk file: the
  ``Format Version`` row, then ``Campaign Customer List Association`` rows
  (``Bid Adjustment`` -90 to +900), ``Campaign Negative Customer List
  Association`` rows for exclusions, ``Campaign Company Name / Industry / Job
  Function Criterion`` rows for segments mapped to LinkedIn profiles (-90 to
  +900, no campaign-level exclusion) and, when device rules apply, all three
  ``Campaign DeviceOS Criterion`` rows (-100 to +900);
* ``bids/linkedin_campaign_bids.csv``: one bid per LinkedIn campaign.

Each writer checks its platform's documented range before writing and
refuses a value outside it. The formats were checked against Google Ads
Editor help (articles 57747, 1052569, 30532), the Google Ads API reference
(CampaignCriterion) and the Microsoft Advertising Bulk API record references.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from optimizer.bidding import (
    RANGES,
    Adjustment,
    BidPlan,
    PreviousBid,
    PreviousKey,
    format_percent,
    recommend_bids,
)
from optimizer.bids import BidInputError, BidWarning, CriterionKind, Device
from optimizer.errors import OptimizerError
from optimizer.outputs import allocation_frame
from optimizer.plan import Plan
from optimizer.scenario import Platform, Scenario


class PlatformRangeError(OptimizerError):
    """An adjustment outside its platform's documented range reached a writer."""


BIDS_COLUMNS = (
    "channel_id",
    "campaign",
    "platform",
    "criterion_type",
    "criterion_value",
    "segment_id",
    "status",
    "adjustment_percent",
    "multiplier",
    "previous_percent",
    "rules",
    "contributions",
    "reason",
)
GOOGLE_EDITOR_COLUMNS = (
    "Campaign",
    "Ad group",
    "Audience",
    "Bid Modifier",
    "Desktop Bid Modifier",
    "Mobile Bid Modifier",
    "Tablet Bid Modifier",
)
GOOGLE_DEVICE_COLUMNS = {
    Device.DESKTOP: "Desktop Bid Modifier",
    Device.MOBILE: "Mobile Bid Modifier",
    Device.TABLET: "Tablet Bid Modifier",
}
GOOGLE_API_DEVICES = {
    Device.DESKTOP: "DESKTOP",
    Device.MOBILE: "MOBILE",
    Device.TABLET: "TABLET",
}
#: Google Ads API bid_modifier: 0.1 to 10.0; 0 opts a device out.
GOOGLE_API_MODIFIERS = (0.1, 10.0)

MICROSOFT_COLUMNS = (
    "Type",
    "Status",
    "Id",
    "Parent Id",
    "Campaign",
    "Client Id",
    "Target",
    "Bid Adjustment",
    "Name",
    "Audience",
    "Profile Id",
)
MICROSOFT_FORMAT_VERSION = "6.0"
MICROSOFT_AUDIENCE = "Campaign Customer List Association"
MICROSOFT_NEGATIVE_AUDIENCE = "Campaign Negative Customer List Association"
MICROSOFT_DEVICE = "Campaign DeviceOS Criterion"
MICROSOFT_PROFILES = {
    CriterionKind.COMPANY_NAME: "Campaign Company Name Criterion",
    CriterionKind.INDUSTRY: "Campaign Industry Criterion",
    CriterionKind.JOB_FUNCTION: "Campaign Job Function Criterion",
}
MICROSOFT_DEVICES = {
    Device.DESKTOP: "Computers",
    Device.MOBILE: "Smartphones",
    Device.TABLET: "Tablets",
}
LINKEDIN_COLUMNS = (
    "campaign",
    "channel_id",
    "cost_type",
    "base_bid",
    "multiplier",
    "bid",
    "min_bid",
    "max_bid",
    "currency",
    "rules",
    "reason",
)

GOOGLE_EDITOR_FILE = "google_ads_editor.csv"
GOOGLE_API_FILE = "google_ads_api.json"
MICROSOFT_FILE = "microsoft_ads_bulk.csv"
LINKEDIN_FILE = "linkedin_campaign_bids.csv"


# --- from a plan to its bids ----------------------------------------------------


def allocation_as_written(plan: Plan) -> pd.DataFrame:
    """The plan's allocation with the numbers ``allocation.csv`` holds.

    Bids computed from it equal the bids ``optimizer bids`` computes from the
    written file.
    """
    frame = allocation_frame(plan)
    numbers = ["spend", "clicks", plan.scenario.objective.maximize.value]
    for column in numbers:
        frame[column] = pd.to_numeric(frame[column].replace("", math.nan))
    return frame


def previous_bids(
    scenario: Scenario, override: str | Path | None = None
) -> dict[PreviousKey, PreviousBid]:
    """The previous bids: ``override``, else ``[bids] previous``, else none.

    ``[bids] previous`` is relative to the scenario file.
    """
    if override is not None:
        return read_previous(override)
    relative = scenario.bids.previous
    if relative is None:
        return {}
    base = scenario.source.parent if scenario.source is not None else Path()
    return read_previous(base / relative)


def plan_bids(plan: Plan, *, previous: str | Path | None = None) -> BidPlan:
    """A plan's bids by its scenario's rules, against the previous bids."""
    scenario = plan.scenario
    return recommend_bids(
        scenario,
        allocation_as_written(plan),
        previous=previous_bids(scenario, previous),
    )


def write_plan_bids(plan: Plan, folder: str | Path) -> list[Path]:
    """Compute a plan's bids and write ``bids.csv`` and ``bids/`` into ``folder``."""
    return write_bid_files(plan_bids(plan), folder)


def write_bid_files(bids: BidPlan, folder: str | Path) -> list[Path]:
    """Write ``bids.csv`` and, under ``bids/``, one file per platform used.

    Files are written into ``folder`` as given; wrap the call in
    :func:`optimizer.outputs.staged_folder` for all-or-nothing writing.
    """
    folder = Path(folder)
    exports = folder / "bids"
    exports.mkdir(parents=True, exist_ok=True)
    written = [_write_rows(folder / "bids.csv", BIDS_COLUMNS, bids_rows(bids))]

    google = bids.on(Platform.GOOGLE_ADS)
    if google:
        written.append(
            _write_rows(
                exports / GOOGLE_EDITOR_FILE,
                GOOGLE_EDITOR_COLUMNS,
                google_editor_rows(google),
            )
        )
        path = exports / GOOGLE_API_FILE
        record = {"campaign_criteria": google_api_criteria(google)}
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    microsoft = bids.on(Platform.MICROSOFT_ADS)
    if microsoft:
        written.append(
            _write_rows(
                exports / MICROSOFT_FILE,
                MICROSOFT_COLUMNS,
                microsoft_rows(microsoft),
            )
        )
    if bids.campaign_bids:
        written.append(
            _write_rows(exports / LINKEDIN_FILE, LINKEDIN_COLUMNS, linkedin_rows(bids))
        )
    return written


def _write_rows(
    path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, str]]
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- bids.csv ----------------------------------------------------------------------


def bids_rows(bids: BidPlan) -> list[dict[str, str]]:
    """One row per adjustment, as ``bids.csv`` holds it."""
    return [
        {
            "channel_id": a.channel_id,
            "campaign": a.campaign,
            "platform": a.platform.value,
            "criterion_type": a.kind.value,
            "criterion_value": a.value,
            "segment_id": a.segment_id or "",
            "status": "excluded" if a.excluded else "adjusted",
            "adjustment_percent": format_percent(a.percent),
            "multiplier": f"{a.multiplier:.4f}",
            "previous_percent": a.previous.describe() if a.previous else "",
            "rules": ";".join(a.rules),
            "contributions": a.contributions(),
            "reason": a.reason,
        }
        for a in bids.adjustments
    ]


# --- Google Ads ----------------------------------------------------------------


def google_editor_rows(adjustments: Sequence[Adjustment]) -> list[dict[str, str]]:
    """Google Ads Editor rows: one per campaign with devices, one per audience."""
    rows = []
    for campaign, members in _by_campaign(adjustments):
        devices = [a for a in members if a.kind is CriterionKind.DEVICE]
        if devices:
            row = dict.fromkeys(GOOGLE_EDITOR_COLUMNS, "")
            row["Campaign"] = campaign
            for device in devices:
                _check_range(device, GOOGLE_EDITOR_FILE)
                column = GOOGLE_DEVICE_COLUMNS[Device(device.value)]
                row[column] = format_percent(device.percent)
            rows.append(row)
        for audience in members:
            if audience.kind is not CriterionKind.AUDIENCE or audience.excluded:
                continue
            _check_range(audience, GOOGLE_EDITOR_FILE)
            row = dict.fromkeys(GOOGLE_EDITOR_COLUMNS, "")
            row.update(
                {
                    "Campaign": campaign,
                    "Audience": audience.value,
                    "Bid Modifier": format_percent(audience.percent),
                }
            )
            rows.append(row)
    return rows


def google_api_criteria(
    adjustments: Sequence[Adjustment],
) -> list[dict[str, object]]:
    """Campaign criteria in Google Ads API terms (names stand in for ids)."""
    criteria: list[dict[str, object]] = []
    for adjustment in adjustments:
        device = adjustment.kind is CriterionKind.DEVICE
        record: dict[str, object] = {
            "campaign": adjustment.campaign,
            "criterion_type": "DEVICE" if device else "USER_LIST",
        }
        if device:
            record["device"] = GOOGLE_API_DEVICES[Device(adjustment.value)]
        else:
            record["user_list"] = adjustment.value
        if adjustment.excluded and not device:
            record["negative"] = True
        else:
            modifier = round(adjustment.multiplier, 4)
            _check_api_modifier(adjustment, modifier, opt_out=device)
            record["bid_modifier"] = modifier
        criteria.append(record)
    return criteria


def _check_api_modifier(
    adjustment: Adjustment, modifier: float, *, opt_out: bool
) -> None:
    low, high = GOOGLE_API_MODIFIERS
    if low <= modifier <= high or (opt_out and modifier == 0):
        return
    allowed = f"{low:g} to {high:g}" + (" or 0 (opt out)" if opt_out else "")
    raise PlatformRangeError(
        f"{GOOGLE_API_FILE}: campaign '{adjustment.campaign}', "
        f"{adjustment.kind.value} {adjustment.value}: got bid_modifier "
        f"{modifier:g}; expected {allowed}, the Google Ads API range. Recompute the "
        "bids with recommend_bids, which clamps them to the range."
    )


# --- Microsoft Advertising --------------------------------------------------------


def microsoft_rows(adjustments: Sequence[Adjustment]) -> list[dict[str, str]]:
    """The bulk file's rows: the Format Version row, then one per criterion."""
    rows = [_microsoft_row(Type="Format Version", Name=MICROSOFT_FORMAT_VERSION)]
    for campaign, members in _by_campaign(adjustments):
        parent = _parent_id(members)
        for adjustment in members:
            _check_range(adjustment, MICROSOFT_FILE)
            rows.append(_microsoft_record(adjustment, campaign, parent))
    return rows


def _microsoft_record(
    adjustment: Adjustment, campaign: str, parent: str
) -> dict[str, str]:
    common = {"Status": "Active", "Parent Id": parent, "Campaign": campaign}
    percent = format_percent(adjustment.percent)
    if adjustment.kind is CriterionKind.AUDIENCE:
        kind = (
            MICROSOFT_NEGATIVE_AUDIENCE if adjustment.excluded else MICROSOFT_AUDIENCE
        )
        return _microsoft_row(
            Type=kind,
            **common,
            **{"Client Id": adjustment.value},
            **({} if adjustment.excluded else {"Bid Adjustment": percent}),
            Audience=adjustment.value,
        )
    if adjustment.kind is CriterionKind.DEVICE:
        return _microsoft_row(
            Type=MICROSOFT_DEVICE,
            **common,
            **{"Client Id": adjustment.value, "Bid Adjustment": percent},
            Target=MICROSOFT_DEVICES[Device(adjustment.value)],
        )
    return _microsoft_row(
        Type=MICROSOFT_PROFILES[adjustment.kind],
        **common,
        **{
            "Client Id": adjustment.segment_id or "",
            "Bid Adjustment": percent,
            "Profile Id": adjustment.value,
        },
    )


def _microsoft_row(**values: str) -> dict[str, str]:
    row = dict.fromkeys(MICROSOFT_COLUMNS, "")
    row.update(values)
    return row


def _parent_id(members: Sequence[Adjustment]) -> str:
    """The campaign id Microsoft needs on criterion records, if given."""
    first = members[0]
    parent = first.platform_id
    needs_parent = any(a.kind is not CriterionKind.AUDIENCE for a in members)
    if parent is None and needs_parent:
        warnings.warn(
            f"{MICROSOFT_FILE}: campaign '{first.campaign}' has device or profile "
            "criterion rows, which Microsoft Advertising adds only with the "
            "campaign's id in Parent Id, and the scenario gives none; set "
            f"platform_id in the [[bids.campaigns]] entry of '{first.channel_id}'.",
            BidWarning,
            stacklevel=5,
        )
    return parent or ""


# --- LinkedIn -------------------------------------------------------------------------


def linkedin_rows(bids: BidPlan) -> list[dict[str, str]]:
    """One row per LinkedIn campaign: its bid within the given limits."""
    rows = []
    for bid in bids.campaign_bids:
        low, high, amount = bid.min_bid, bid.max_bid, bid.bid
        if amount is not None and (
            amount <= 0
            or (low is not None and amount < low)
            or (high is not None and amount > high)
        ):
            raise PlatformRangeError(
                f"{LINKEDIN_FILE}: campaign '{bid.campaign}': got a bid of "
                f"{amount:g}; expected more than 0 and within linkedin_min_bid "
                "to linkedin_max_bid. Recompute the bids with recommend_bids."
            )
        rows.append(
            {
                "campaign": bid.campaign,
                "channel_id": bid.channel_id,
                "cost_type": "CPC",
                "base_bid": _money(bid.base_bid),
                "multiplier": f"{bid.multiplier:.4f}",
                "bid": _money(amount),
                "min_bid": _money(low),
                "max_bid": _money(high),
                "currency": bid.currency,
                "rules": ";".join(bid.rules),
                "reason": bid.reason,
            }
        )
    return rows


def _money(amount: float | None) -> str:
    return "" if amount is None else f"{amount:.2f}"


# --- checks shared by the writers ----------------------------------------------


def _by_campaign(
    adjustments: Sequence[Adjustment],
) -> list[tuple[str, list[Adjustment]]]:
    grouped: dict[str, list[Adjustment]] = {}
    for adjustment in adjustments:
        grouped.setdefault(adjustment.campaign, []).append(adjustment)
    return list(grouped.items())


def _check_range(adjustment: Adjustment, file: str) -> None:
    limits = RANGES[(adjustment.platform, adjustment.kind)]
    if adjustment.excluded:
        if limits.can_exclude:
            return
    elif limits.clamp(adjustment.percent) == adjustment.percent:
        return
    got = (
        "an exclusion"
        if adjustment.excluded
        else (f"{format_percent(adjustment.percent)}%")
    )
    raise PlatformRangeError(
        f"{file}: campaign '{adjustment.campaign}', {adjustment.kind.value} "
        f"{adjustment.value}: got {got}; expected {limits.describe()}, the "
        f"{limits.platform} range for {limits.kind}. Recompute the bids with "
        "recommend_bids, which clamps them to the range."
    )


# --- reading previous bids back ------------------------------------------------------


def _normalized(header: str) -> str:
    """A header as Google Ads Editor compares them: no case, spaces or '_'."""
    return re.sub(r"[\s_]+", "", header).lower()


def read_previous(path: str | Path) -> dict[PreviousKey, PreviousBid]:
    """Previous adjustments from bids.csv, a Google Ads Editor CSV or a bulk file.

    Headers are matched ignoring case, spaces and underscores, as Google Ads
    Editor matches them; a Microsoft bulk file is recognized by its Format
    Version row.

    Raises
    ------
    BidInputError
        When the file is missing, is none of the three formats, or holds an
        adjustment that is not a number.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BidInputError(
            f"{path}: no such file; expected the previous bids (bids.csv, or a "
            "Google Ads Editor or Microsoft Advertising bulk file written by the "
            "optimizer)."
        ) from None
    table = list(csv.reader(io.StringIO(text, newline="")))
    if not table:
        raise BidInputError(f"{path}: the file is empty; expected previous bids.")
    header = [_normalized(cell) for cell in table[0]]
    records = [dict(zip(header, row, strict=False)) for row in table[1:]]
    # Messages name a column as the file spells it.
    spelled = dict(zip(header, (cell.strip() for cell in table[0]), strict=True))
    if {"criteriontype", "criterionvalue", "adjustmentpercent"} <= set(header):
        return _previous_from_bids_csv(path, records)
    if "type" in header and any(r.get("type") == "Format Version" for r in records):
        return _previous_from_microsoft(path, records)
    editor = {
        "bidmodifier",
        "bidadjustment",
        *map(_normalized, GOOGLE_DEVICE_COLUMNS.values()),
    }
    if "campaign" in header and editor & set(header):
        return _previous_from_google_editor(path, records, spelled)
    raise BidInputError(
        f"{path}, row 1: got the columns {', '.join(table[0])}; expected bids.csv, "
        "a Google Ads Editor CSV or a Microsoft Advertising bulk CSV."
    )


def _percent(path: Path, row: int, field: str, text: str) -> float:
    cleaned = text.strip().removesuffix("%").removeprefix("+")
    try:
        value = float(cleaned)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BidInputError(
            f"{path}, row {row}, field '{field}': got {text!r}; expected an "
            "adjustment in percent such as 25 or -40."
        )
    return value


def _previous_from_bids_csv(
    path: Path, records: Sequence[Mapping[str, str]]
) -> dict[PreviousKey, PreviousBid]:
    previous = {}
    for row, record in enumerate(records, start=2):
        key = (
            record["campaign"],
            record["criteriontype"],
            record["criterionvalue"],
        )
        if record.get("status") == "excluded":
            previous[key] = PreviousBid(None)
        else:
            text = record["adjustmentpercent"]
            previous[key] = PreviousBid(_percent(path, row, "adjustment_percent", text))
    return previous


def _previous_from_google_editor(
    path: Path, records: Sequence[Mapping[str, str]], spelled: Mapping[str, str]
) -> dict[PreviousKey, PreviousBid]:
    previous = {}
    for row, record in enumerate(records, start=2):
        campaign = record.get("campaign", "")
        audience = record.get("audience", "").strip()
        if audience:
            column = "bidmodifier" if record.get("bidmodifier") else "bidadjustment"
            text = record.get(column, "")
            if text.strip():
                key = (campaign, CriterionKind.AUDIENCE.value, audience)
                field = spelled[column]
                previous[key] = PreviousBid(_percent(path, row, field, text))
            continue
        for device, column in GOOGLE_DEVICE_COLUMNS.items():
            text = record.get(_normalized(column), "")
            if text.strip():
                key = (campaign, CriterionKind.DEVICE.value, device.value)
                field = spelled[_normalized(column)]
                previous[key] = PreviousBid(_percent(path, row, field, text))
    return previous


def _previous_from_microsoft(
    path: Path, records: Sequence[Mapping[str, str]]
) -> dict[PreviousKey, PreviousBid]:
    profiles = {record: kind for kind, record in MICROSOFT_PROFILES.items()}
    devices = {target: device for device, target in MICROSOFT_DEVICES.items()}
    previous = {}
    for row, record in enumerate(records, start=2):
        kind, campaign = record.get("type", ""), record.get("campaign", "")
        if record.get("status") == "Deleted":
            continue
        if kind == MICROSOFT_NEGATIVE_AUDIENCE:
            key = (campaign, CriterionKind.AUDIENCE.value, record.get("audience", ""))
            previous[key] = PreviousBid(None)
            continue
        if kind == MICROSOFT_AUDIENCE:
            key = (campaign, CriterionKind.AUDIENCE.value, record.get("audience", ""))
        elif kind == MICROSOFT_DEVICE:
            device = devices.get(record.get("target", ""))
            if device is None:
                continue
            key = (campaign, CriterionKind.DEVICE.value, device.value)
        elif kind in profiles:
            key = (campaign, profiles[kind].value, record.get("profileid", ""))
        else:
            continue
        text = record.get("bidadjustment", "") or "0"
        previous[key] = PreviousBid(_percent(path, row, "Bid Adjustment", text))
    return previous
