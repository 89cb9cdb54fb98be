"""A commune's agency system reporting to chiso, as another team would write it.

It knows only the contract in proto/ and a bearer token: it reads the criteria
set that applies, submits the commune's values, handles a field violation the
way the API reports it (google.rpc.BadRequest in the status details), submits
the assessment for review and reads the scorecard back from reporting.

    python agency.py --server 127.0.0.1:50051 --token "$TOKEN" --unit 15499 --year 2023
"""

import argparse
import sys
import time
import uuid

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from chiso.assessment.v1 import assessment_pb2 as apb
from chiso.assessment.v1 import assessment_pb2_grpc as agrpc
from chiso.assessment.v1 import criteria_pb2 as cpb
from chiso.assessment.v1 import criteria_pb2_grpc as cgrpc
from chiso.reporting.v1 import reporting_pb2 as rpb
from chiso.reporting.v1 import reporting_pb2_grpc as rgrpc

EVIDENCE = apb.Evidence(document_number="12/BC-UBND", note="DỮ LIỆU MINH HỌA (example client)")


def field_violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of an InvalidArgument answer."""
    status = rpc_status.from_call(err)
    found = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [(v.field, v.description) for v in bad.field_violations]
    return found


def value_meeting(indicator: cpb.Indicator) -> apb.IndicatorValue:
    """A value that meets the indicator, as a commune that did its work reports it."""
    value = apb.IndicatorValue(indicator_code=indicator.code, evidence=EVIDENCE)
    kind = indicator.kind
    if kind == cpb.INDICATOR_KIND_YES_NO:
        value.yes = True
    elif kind == cpb.INDICATOR_KIND_CHOICE:
        value.choice = max(indicator.options, key=lambda o: o.points).code
    elif kind == cpb.INDICATOR_KIND_RATIO:
        at_most = indicator.comparison == cpb.COMPARISON_AT_MOST
        percent = 0.0 if at_most else min(100.0, indicator.threshold)
        value.ratio.numerator = percent
        value.ratio.denominator = 100
    elif kind == cpb.INDICATOR_KIND_COUNT:
        value.count = max((t.at_least for t in indicator.tiers), default=1)
    elif kind == cpb.INDICATOR_KIND_TARGET:
        value.number = indicator.threshold
    else:
        raise ValueError(f"{indicator.code}: unknown indicator kind {kind}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="host:port of chiso")
    parser.add_argument("--token", required=True, help="bearer token: submitter and reader of the unit")
    parser.add_argument("--unit", required=True, help="GSO code of the commune")
    parser.add_argument("--year", type=int, required=True)
    parser.add_argument("--criteria-set", default="th-commune-2023")
    args = parser.parse_args()

    channel = grpc.insecure_channel(args.server)
    auth = [("authorization", f"Bearer {args.token}")]
    criteria = cgrpc.CriteriaServiceStub(channel)
    assessments = agrpc.AssessmentServiceStub(channel)
    reporting = rgrpc.ReportingServiceStub(channel)

    criteria_set = criteria.GetCriteriaSet(
        cpb.GetCriteriaSetRequest(id=args.criteria_set), metadata=auth
    ).criteria_set
    print(f"{criteria_set.id} v{criteria_set.version}: {len(criteria_set.indicators)} indicators")

    # A careless first try: a ratio over nothing. chiso refuses the whole
    # request and names the bad field; nothing is written.
    broken = [value_meeting(i) for i in criteria_set.indicators]
    ratio_at = next(k for k, i in enumerate(criteria_set.indicators) if i.kind == cpb.INDICATOR_KIND_RATIO)
    broken[ratio_at].ratio.denominator = 0
    try:
        assessments.UpsertIndicatorValues(
            apb.UpsertIndicatorValuesRequest(unit_code=args.unit, year=args.year, values=broken),
            metadata=auth,
        )
        print("a ratio over 0 was accepted", file=sys.stderr)
        return 1
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        violations = field_violations(err)
        print(f"refused as expected: {violations}")
        if not any(field == f"values[{ratio_at}].ratio.denominator" or field.startswith(f"values[{ratio_at}]")
                   for field, _ in violations):
            print(f"no violation names values[{ratio_at}]", file=sys.stderr)
            return 1

    # The corrected request, safe to retry: the same request_id answers the same.
    request = apb.UpsertIndicatorValuesRequest(
        unit_code=args.unit,
        year=args.year,
        values=[value_meeting(i) for i in criteria_set.indicators],
        criteria_set_id=criteria_set.id,
        request_id=f"agency-{uuid.uuid4()}",
    )
    written = assessments.UpsertIndicatorValues(request, metadata=auth).assessment
    again = assessments.UpsertIndicatorValues(request, metadata=auth).assessment
    if again.etag != written.etag:
        print("a retried request wrote again", file=sys.stderr)
        return 1
    card = written.scorecard
    print(f"{written.unit_code} {written.unit_name}: {card.total_points:g}/{card.max_points:g} points, complete={card.complete}")

    submitted = assessments.SubmitAssessment(
        apb.SubmitAssessmentRequest(unit_code=args.unit, year=args.year, etag=written.etag),
        metadata=auth,
    ).assessment
    print(f"status {apb.AssessmentStatus.Name(submitted.status)}")

    # Reporting follows the event stream; the submission shows within a second.
    deadline = time.monotonic() + 15
    while True:
        try:
            answer = reporting.GetScorecard(
                rpb.GetScorecardRequest(unit_code=args.unit, year=args.year), metadata=auth
            )
            if answer.status == apb.ASSESSMENT_STATUS_SUBMITTED:
                break
            seen = apb.AssessmentStatus.Name(answer.status)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
            seen = "nothing yet"
        if time.monotonic() > deadline:
            print(f"reporting still shows {seen}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    met = sum(1 for i in answer.scorecard.indicators if i.met)
    print(f"reporting: {answer.unit_name} {answer.year}: {met}/{len(answer.scorecard.indicators)} met, "
          f"complete={answer.scorecard.complete}")
    if not answer.scorecard.complete:
        print("values that meet every indicator did not complete the set", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
