//! `chiso up --demo`: a deterministic, synthetic data set for 2022–2024 over
//! every Thanh Hóa commune and district, entered through the public API the
//! way commune, district and province systems would. It is labelled as
//! synthetic in every evidence note; only Thọ Xuân's district figures are
//! real (its 2022 report, DESIGN §1), entered as its 2024 district report.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chiso_auth::{Issuer, Role};
use chiso_proto::assessment::v1::{
    self as apb, assessment_service_client::AssessmentServiceClient,
    criteria_service_client::CriteriaServiceClient,
};
use chiso_proto::units::v1::{self as upb, units_service_client::UnitsServiceClient};
use chiso_server::BearerInterceptor;
use futures::TryStreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Written on every synthetic value.
pub const LABEL: &str = "DỮ LIỆU MINH HỌA — synthetic demo data";

/// How many communes become ready in each year: a little behind the plan
/// of QĐ 969 (94, 132, 133), so the demo shows gaps.
const READY: [(i32, usize); 3] = [(2022, 90), (2023, 125), (2024, 140)];

/// Thọ Xuân's real 2022 figures (DESIGN §1), by district indicator.
const THO_XUAN: [(&str, Real); 8] = [
    ("HTS.01", Real::Ratio(30.0, 30.0)), // online meeting rooms in 30/30 communes
    ("HTS.02", Real::Ratio(30.0, 30.0)), // security cameras in 30/30 communes
    ("CQS.01", Real::Yes),               // 1 district portal
    ("CQS.02", Real::Ratio(30.0, 30.0)), // 30 commune portals
    ("CQS.03", Real::Ratio(100.0, 100.0)), // 100% of leaders sign digitally
    ("CQS.04", Real::Ratio(100.0, 100.0)), // 100% of dossiers on time
    ("CQS.05", Real::Count(42)),         // 42 level-3 online public services
    ("CQS.06", Real::Count(57)),         // 57 level-4 online public services
];

enum Real {
    Yes,
    Ratio(f64, f64),
    Count(i64),
}

type Authed = InterceptedService<Channel, BearerInterceptor>;

/// A stable hash of a code, so the data set is the same on every machine:
/// FNV-1a, then a finaliser (splitmix64) so neighbouring codes — communes
/// of one district — scatter instead of sorting together.
fn stable(text: &str) -> u64 {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn evidence(unit: &str, year: i32) -> Option<apb::Evidence> {
    Some(apb::Evidence {
        document_number: format!("DEMO-{year}/{unit}"),
        link: String::new(),
        note: LABEL.to_owned(),
    })
}

/// A value for `ind`: one that meets it, or (with `fail`) one that misses
/// it. `seed` varies the numbers.
pub fn value_for(ind: &apb::Indicator, fail: bool, seed: u64) -> apb::indicator_value::Value {
    use apb::indicator_value::Value as V;
    let at_most = ind.comparison == apb::Comparison::AtMost as i32;
    let wiggle = (seed % 7) as f64;
    match apb::IndicatorKind::try_from(ind.kind).unwrap_or(apb::IndicatorKind::Unspecified) {
        apb::IndicatorKind::YesNo | apb::IndicatorKind::Unspecified => V::Yes(!fail),
        apb::IndicatorKind::Choice => {
            let pick = ind
                .options
                .iter()
                .filter(|o| o.meets != fail)
                .max_by(|a, b| a.points.total_cmp(&b.points))
                .or_else(|| ind.options.first());
            V::Choice(pick.map(|o| o.code.clone()).unwrap_or_default())
        }
        apb::IndicatorKind::Ratio => {
            let t = ind.threshold;
            let percent = match (fail, at_most) {
                (false, false) => (t + wiggle).min(100.0),
                (true, false) => (t - 5.0 - wiggle).max(0.0),
                (false, true) => (t - wiggle).max(0.0),
                (true, true) => (t + 5.0 + wiggle).min(100.0),
            };
            V::Ratio(apb::Ratio {
                numerator: percent.round(),
                denominator: 100.0,
            })
        }
        apb::IndicatorKind::Count => {
            let top = ind
                .tiers
                .iter()
                .map(|t| t.at_least)
                .max()
                .unwrap_or(0)
                .max(ind.threshold as i64);
            if fail {
                V::Count(((ind.threshold as i64) - 1).max(0))
            } else {
                V::Count(top + (seed % 3) as i64)
            }
        }
        apb::IndicatorKind::Target => {
            let t = ind.threshold;
            let v = match (fail, at_most) {
                (false, false) => t * (1.0 + wiggle / 100.0),
                (true, false) => t * 0.8,
                (false, true) => t,
                (true, true) => t * 1.5 + 1.0,
            };
            V::Number(v)
        }
    }
}

struct Demo {
    channel: Channel,
    issuer: Issuer,
}

impl Demo {
    fn client(&self, roles: &[Role], scope: &str) -> anyhow::Result<Authed> {
        let token = self.issuer.issue(
            &format!("demo-{scope}"),
            roles,
            scope,
            Duration::from_secs(3600),
        )?;
        Ok(InterceptedService::new(
            self.channel.clone(),
            BearerInterceptor::new(&token).map_err(anyhow::Error::msg)?,
        ))
    }

    async fn set(&self, id: &str) -> anyhow::Result<apb::CriteriaSet> {
        CriteriaServiceClient::new(self.client(&[Role::Reader], "VN")?)
            .get_criteria_set(apb::GetCriteriaSetRequest {
                id: id.to_owned(),
                version: 0,
            })
            .await?
            .into_inner()
            .criteria_set
            .context("no criteria set in the answer")
    }

    async fn units(&self, level: upb::UnitLevel, year: i32) -> anyhow::Result<Vec<upb::Unit>> {
        let mut client = UnitsServiceClient::new(self.client(&[Role::Reader], "VN")?);
        let mut units = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_units(upb::ListUnitsRequest {
                    parent_code: "38".into(),
                    level: level as i32,
                    as_of: Some(chiso_proto::google::r#type::Date {
                        year,
                        month: 12,
                        day: 31,
                    }),
                    page_size: 1000,
                    page_token,
                })
                .await?
                .into_inner();
            units.extend(page.units);
            if page.next_page_token.is_empty() {
                return Ok(units);
            }
            page_token = page.next_page_token;
        }
    }

    /// One unit's year: values, submission, and review as `outcome` says.
    async fn report(
        &self,
        unit: &upb::Unit,
        year: i32,
        values: Vec<apb::IndicatorValue>,
        reviewer_scope: Option<&str>,
        outcome: Outcome,
    ) -> anyhow::Result<()> {
        let id = |step: &str| format!("demo/{year}/{}/{step}", unit.code);
        let mut own = AssessmentServiceClient::new(self.client(&[Role::Submitter], &unit.code)?);
        own.upsert_indicator_values(apb::UpsertIndicatorValuesRequest {
            unit_code: unit.code.clone(),
            year,
            values,
            request_id: id("values"),
            ..Default::default()
        })
        .await
        .with_context(|| format!("values of {} for {year}", unit.code))?;
        if outcome == Outcome::Draft {
            return Ok(());
        }
        own.submit_assessment(apb::SubmitAssessmentRequest {
            unit_code: unit.code.clone(),
            year,
            request_id: id("submit"),
            ..Default::default()
        })
        .await?;
        if outcome == Outcome::Submitted {
            return Ok(());
        }
        if let Some(district) = reviewer_scope {
            let mut reviewer =
                AssessmentServiceClient::new(self.client(&[Role::Reviewer], district)?);
            if outcome == Outcome::Returned {
                reviewer
                    .return_assessment(apb::ReturnAssessmentRequest {
                        unit_code: unit.code.clone(),
                        year,
                        reason: format!("Bổ sung văn bản chứng minh ({LABEL})"),
                        request_id: id("return"),
                        ..Default::default()
                    })
                    .await?;
                return Ok(());
            }
            reviewer
                .verify_assessment(apb::VerifyAssessmentRequest {
                    unit_code: unit.code.clone(),
                    year,
                    request_id: id("verify"),
                    ..Default::default()
                })
                .await?;
        }
        AssessmentServiceClient::new(self.client(&[Role::Approver], "38")?)
            .approve_assessment(apb::ApproveAssessmentRequest {
                unit_code: unit.code.clone(),
                year,
                request_id: id("approve"),
                ..Default::default()
            })
            .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Draft,
    Submitted,
    Returned,
    Approved,
}

/// The year each commune is ready, by stable rank; `None` = not by 2024.
fn readiness(communes: &[upb::Unit]) -> std::collections::HashMap<String, i32> {
    let mut ranked: Vec<&upb::Unit> = communes.iter().collect();
    ranked.sort_by_key(|u| (stable(&u.code), u.code.clone()));
    let mut ready = std::collections::HashMap::new();
    let mut it = ranked.into_iter();
    for (year, n) in READY {
        for u in it.by_ref().take(n) {
            ready.insert(u.code.clone(), year);
        }
    }
    ready
}

/// Fills 2022–2024 through the API of the server at `url`, signing tokens
/// with `data_dir`'s development key. Does nothing when 2022 already has
/// assessments.
pub async fn run(url: &str, data_dir: &Path) -> anyhow::Result<()> {
    let secret = chiso_auth::dev_secret(data_dir)?;
    let channel = Channel::from_shared(url.to_owned())?.connect().await?;
    let demo = Demo {
        channel,
        issuer: Issuer::hs256(&secret),
    };
    let existing = AssessmentServiceClient::new(demo.client(&[Role::Reader], "VN")?)
        .list_assessments(apb::ListAssessmentsRequest {
            year: 2022,
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    if !existing.assessments.is_empty() {
        tracing::info!("demo data already present");
        return Ok(());
    }
    tracing::info!("filling 2022–2024 with the synthetic demo data set");
    let first_communes = demo.units(upb::UnitLevel::Commune, 2022).await?;
    let ready = readiness(&first_communes);
    for year in [2022, 2023, 2024] {
        let set = demo
            .set(if year == 2022 {
                "th-commune-2022"
            } else {
                "th-commune-2023"
            })
            .await?;
        let communes = demo.units(upb::UnitLevel::Commune, year).await?;
        let ready = &ready;
        let demo = &demo;
        let set = &set;
        futures::stream::iter(communes.iter().map(Ok::<_, anyhow::Error>))
            .try_for_each_concurrent(4, |unit| async move {
                let seed = stable(&format!("{}/{year}", unit.code));
                let done = ready.get(&unit.code).is_some_and(|&r| r <= year);
                let values = set
                    .indicators
                    .iter()
                    .enumerate()
                    .map(|(i, ind)| apb::IndicatorValue {
                        indicator_code: ind.code.clone(),
                        // Not ready yet: two indicators in three are missed,
                        // which fails both a points rule and a mandatory one.
                        value: Some(value_for(
                            ind,
                            !done && !(i as u64 + seed).is_multiple_of(3),
                            seed + i as u64,
                        )),
                        evidence: evidence(&unit.code, year),
                    })
                    .collect();
                let outcome = match (year, seed % 25) {
                    (2024, 0) => Outcome::Draft,
                    (2024, 1 | 2) => Outcome::Submitted,
                    (_, 3) if !done => Outcome::Returned,
                    _ => Outcome::Approved,
                };
                demo.report(unit, year, values, Some(unit.parent_code.as_str()), outcome)
                    .await
            })
            .await?;
        tracing::info!(year, communes = communes.len(), "demo year entered");
    }

    // District reports of 2024: the 12 districts of QĐ 969 and Thọ Xuân
    // meet the set; Thọ Xuân with its real figures.
    let set = demo.set("th-district-2024").await?;
    let named = [
        "380", "382", "381", "407", "399", "406", "393", "389", "385", "390", "394", "396",
    ];
    for district in demo.units(upb::UnitLevel::District, 2024).await? {
        let seed = stable(&format!("{}/2024", district.code));
        let meets = named.contains(&district.code.as_str())
            || district.code == "395"
            || seed.is_multiple_of(4);
        let values = set
            .indicators
            .iter()
            .enumerate()
            .map(|(i, ind)| {
                let real = (district.code == "395")
                    .then(|| THO_XUAN.iter().find(|(c, _)| *c == ind.code))
                    .flatten();
                let value = match real {
                    Some((_, Real::Yes)) => apb::indicator_value::Value::Yes(true),
                    Some((_, Real::Ratio(n, d))) => {
                        apb::indicator_value::Value::Ratio(apb::Ratio {
                            numerator: *n,
                            denominator: *d,
                        })
                    }
                    Some((_, Real::Count(n))) => apb::indicator_value::Value::Count(*n),
                    None => value_for(ind, !meets && i % 3 == 0, seed + i as u64),
                };
                let mut e = evidence(&district.code, 2024);
                if real.is_some()
                    && let Some(e) = e.as_mut()
                {
                    e.note = "Số liệu thực của huyện Thọ Xuân năm 2022 (báo cáo CĐS)".to_owned();
                }
                apb::IndicatorValue {
                    indicator_code: ind.code.clone(),
                    value: Some(value),
                    evidence: e,
                }
            })
            .collect();
        demo.report(&district, 2024, values, None, Outcome::Approved)
            .await?;
    }
    tracing::info!("demo data set complete");
    Ok(())
}
