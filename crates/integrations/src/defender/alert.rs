//! The alert resource of the Graph Security API (`microsoft.graph.security.alert`,
//! served at `/v1.0/security/alerts_v2`) and the evidence kinds Gatehouse reads.
//!
//! Every enumeration is open: a value this version does not know is kept in an
//! `Other` variant instead of failing the page. Graph sends such values because
//! the client asks for them with `Prefer: include-unknown-enum-members`.

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Defines an open string enumeration with its Graph spelling, parsing, `Display`
/// and serde support. Unknown values land in `Other`.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
            /// A value that this version does not know, kept as Graph sent it.
            Other(String),
        }

        impl $name {
            /// Returns the value as Graph spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }

            /// Parses a Graph value; an unknown value becomes `Other`.
            pub fn parse(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::parse("unknown")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Option::<String>::deserialize(deserializer)?;
                Ok(text.map_or_else(Self::default, |text| Self::parse(&text)))
            }
        }
    };
}

open_enum! {
    /// The lifecycle status of an alert.
    AlertStatus {
        Unknown => "unknown",
        New => "new",
        InProgress => "inProgress",
        Resolved => "resolved",
        UnknownFutureValue => "unknownFutureValue",
    }
}

impl AlertStatus {
    /// Returns whether the alert still needs attention. Only `resolved` ends an alert; an
    /// unknown status counts as active, so that a new value never hides one.
    pub fn is_active(&self) -> bool {
        *self != Self::Resolved
    }
}

open_enum! {
    /// The severity Defender gave an alert.
    AlertSeverity {
        Unknown => "unknown",
        Informational => "informational",
        Low => "low",
        Medium => "medium",
        High => "high",
        UnknownFutureValue => "unknownFutureValue",
    }
}

impl AlertSeverity {
    /// Returns the rank used to compare severities (informational 1 to high 4), or
    /// `None` for a severity without an order.
    pub fn rank(&self) -> Option<u8> {
        match self {
            Self::Informational => Some(1),
            Self::Low => Some(2),
            Self::Medium => Some(3),
            Self::High => Some(4),
            Self::Unknown | Self::UnknownFutureValue | Self::Other(_) => None,
        }
    }
}

open_enum! {
    /// The product that raised an alert.
    ServiceSource {
        Unknown => "unknown",
        MicrosoftDefenderForEndpoint => "microsoftDefenderForEndpoint",
        MicrosoftDefenderForIdentity => "microsoftDefenderForIdentity",
        MicrosoftDefenderForCloudApps => "microsoftDefenderForCloudApps",
        MicrosoftDefenderForOffice365 => "microsoftDefenderForOffice365",
        Microsoft365Defender => "microsoft365Defender",
        AzureAdIdentityProtection => "azureAdIdentityProtection",
        MicrosoftAppGovernance => "microsoftAppGovernance",
        DataLossPrevention => "dataLossPrevention",
        UnknownFutureValue => "unknownFutureValue",
        MicrosoftDefenderForCloud => "microsoftDefenderForCloud",
        MicrosoftSentinel => "microsoftSentinel",
        MicrosoftInsiderRiskManagement => "microsoftInsiderRiskManagement",
    }
}

open_enum! {
    /// The detection technology inside the service that raised an alert.
    DetectionSource {
        Unknown => "unknown",
        MicrosoftDefenderForEndpoint => "microsoftDefenderForEndpoint",
        Antivirus => "antivirus",
        SmartScreen => "smartScreen",
        CustomTi => "customTi",
        MicrosoftDefenderForOffice365 => "microsoftDefenderForOffice365",
        AutomatedInvestigation => "automatedInvestigation",
        MicrosoftThreatExperts => "microsoftThreatExperts",
        CustomDetection => "customDetection",
        MicrosoftDefenderForIdentity => "microsoftDefenderForIdentity",
        CloudAppSecurity => "cloudAppSecurity",
        Microsoft365Defender => "microsoft365Defender",
        AzureAdIdentityProtection => "azureAdIdentityProtection",
        Manual => "manual",
        MicrosoftDataLossPrevention => "microsoftDataLossPrevention",
        AppGovernancePolicy => "appGovernancePolicy",
        AppGovernanceDetection => "appGovernanceDetection",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// An analyst's classification of an alert.
    AlertClassification {
        Unknown => "unknown",
        FalsePositive => "falsePositive",
        TruePositive => "truePositive",
        InformationalExpectedActivity => "informationalExpectedActivity",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// An analyst's determination of what an alert is.
    AlertDetermination {
        Unknown => "unknown",
        Apt => "apt",
        Malware => "malware",
        SecurityPersonnel => "securityPersonnel",
        SecurityTesting => "securityTesting",
        UnwantedSoftware => "unwantedSoftware",
        OtherDetermination => "other",
        MultiStagedAttack => "multiStagedAttack",
        CompromisedAccount => "compromisedAccount",
        Phishing => "phishing",
        MaliciousUserActivity => "maliciousUserActivity",
        NotMalicious => "notMalicious",
        NotEnoughDataToValidate => "notEnoughDataToValidate",
        ConfirmedUserActivity => "confirmedUserActivity",
        LineOfBusinessApplication => "lineOfBusinessApplication",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// Defender's verdict on one piece of evidence.
    EvidenceVerdict {
        Unknown => "unknown",
        Suspicious => "suspicious",
        Malicious => "malicious",
        NoThreatsFound => "noThreatsFound",
        UnknownFutureValue => "unknownFutureValue",
    }
}

/// Deserialises `null` as the type's default, because Graph sends `null` for
/// empty collections as well as `[]`.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// One alert as Graph returned it, with the fields Gatehouse uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// The alert id, stable across updates.
    pub id: String,
    #[serde(default)]
    pub provider_alert_id: Option<String>,
    #[serde(default)]
    pub incident_id: Option<String>,
    #[serde(default)]
    pub status: AlertStatus,
    #[serde(default)]
    pub severity: AlertSeverity,
    #[serde(default)]
    pub classification: AlertClassification,
    #[serde(default)]
    pub determination: AlertDetermination,
    #[serde(default)]
    pub service_source: ServiceSource,
    #[serde(default)]
    pub detection_source: DetectionSource,
    /// The id of the detector (rule or model) that raised the alert.
    #[serde(default)]
    pub detector_id: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The attack category, such as `CredentialAccess` or `InitialAccess`.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub alert_web_url: Option<String>,
    #[serde(default)]
    pub threat_display_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub mitre_techniques: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_date_time: Option<OffsetDateTime>,
    /// When the alert last changed; the polling cursor and the version of the alert.
    #[serde(with = "time::serde::rfc3339")]
    pub last_update_date_time: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub resolved_date_time: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub evidence: Vec<Evidence>,
}

impl Alert {
    /// Internet Message-IDs of the messages named by `analyzedMessageEvidence`.
    pub fn internet_message_ids(&self) -> impl Iterator<Item = &str> {
        self.evidence.iter().filter_map(|evidence| match evidence {
            Evidence::AnalyzedMessage(message) => message.internet_message_id.as_deref(),
            _ => None,
        })
    }
}

/// The fields that every kind of evidence shares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceCommon {
    #[serde(default)]
    pub verdict: EvidenceVerdict,
    /// Roles such as `compromised`, `attacker` or `victim`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub roles: Vec<String>,
}

/// A user account as Graph describes it inside evidence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAccount {
    #[serde(default)]
    pub account_name: Option<String>,
    #[serde(default)]
    pub domain_name: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A sender address inside `analyzedMessageEvidence`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailSender {
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub domain_name: Option<String>,
}

/// `#microsoft.graph.security.userEvidence`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEvidence {
    #[serde(flatten)]
    pub common: EvidenceCommon,
    #[serde(default)]
    pub user_account: Option<UserAccount>,
}

/// `#microsoft.graph.security.mailboxEvidence`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxEvidence {
    #[serde(flatten)]
    pub common: EvidenceCommon,
    #[serde(default)]
    pub primary_address: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_account: Option<UserAccount>,
}

/// `#microsoft.graph.security.analyzedMessageEvidence`: one email that the alert
/// names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyzedMessageEvidence {
    #[serde(flatten)]
    pub common: EvidenceCommon,
    #[serde(default)]
    pub recipient_email_address: Option<String>,
    #[serde(default)]
    pub internet_message_id: Option<String>,
    #[serde(default)]
    pub network_message_id: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub p1_sender: Option<EmailSender>,
    #[serde(default)]
    pub p2_sender: Option<EmailSender>,
    #[serde(default)]
    pub delivery_action: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub urls: Vec<String>,
}

/// `#microsoft.graph.security.deviceEvidence`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceEvidence {
    #[serde(flatten)]
    pub common: EvidenceCommon,
    #[serde(default)]
    pub mde_device_id: Option<String>,
    #[serde(default)]
    pub azure_ad_device_id: Option<String>,
    #[serde(default)]
    pub device_dns_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub logged_on_users: Vec<LoggedOnUser>,
}

impl DeviceEvidence {
    /// Returns the most stable id Graph gave the device: the Defender for Endpoint
    /// id, else the Entra ID device id, else the DNS name.
    pub fn device_key(&self) -> Option<&str> {
        self.mde_device_id
            .as_deref()
            .or(self.azure_ad_device_id.as_deref())
            .or(self.device_dns_name.as_deref())
    }
}

/// A user logged on to a device (`microsoft.graph.security.loggedOnUser`): a
/// Windows account name and its domain, not an email address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedOnUser {
    #[serde(default)]
    pub account_name: Option<String>,
    #[serde(default)]
    pub domain_name: Option<String>,
}

/// `#microsoft.graph.security.urlEvidence`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlEvidence {
    #[serde(flatten)]
    pub common: EvidenceCommon,
    #[serde(default)]
    pub url: Option<String>,
}

/// One piece of evidence of an alert, by its `@odata.type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Evidence {
    User(UserEvidence),
    Mailbox(MailboxEvidence),
    AnalyzedMessage(AnalyzedMessageEvidence),
    Device(DeviceEvidence),
    Url(UrlEvidence),
    /// Any other kind (files, processes, IP addresses, cloud apps), or a known kind
    /// whose fields did not have the expected types.
    Other {
        odata_type: String,
        common: EvidenceCommon,
    },
}

const USER_EVIDENCE: &str = "#microsoft.graph.security.userEvidence";
const MAILBOX_EVIDENCE: &str = "#microsoft.graph.security.mailboxEvidence";
const ANALYZED_MESSAGE_EVIDENCE: &str = "#microsoft.graph.security.analyzedMessageEvidence";
const DEVICE_EVIDENCE: &str = "#microsoft.graph.security.deviceEvidence";
const URL_EVIDENCE: &str = "#microsoft.graph.security.urlEvidence";

impl<'de> Deserialize<'de> for Evidence {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.get("@odata.type").is_none() && value.get("kind").is_some() {
            // The form Gatehouse itself serialises, read back from its state file.
            return serde_json::from_value::<StoredEvidence>(value)
                .map(Evidence::from)
                .map_err(serde::de::Error::custom);
        }
        Ok(Evidence::from_value(value))
    }
}

/// [`Evidence`] as its `Serialize` writes it: tagged by `kind`.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum StoredEvidence {
    User(UserEvidence),
    Mailbox(MailboxEvidence),
    AnalyzedMessage(AnalyzedMessageEvidence),
    Device(DeviceEvidence),
    Url(UrlEvidence),
    Other {
        odata_type: String,
        common: EvidenceCommon,
    },
}

impl From<StoredEvidence> for Evidence {
    fn from(stored: StoredEvidence) -> Self {
        match stored {
            StoredEvidence::User(user) => Evidence::User(user),
            StoredEvidence::Mailbox(mailbox) => Evidence::Mailbox(mailbox),
            StoredEvidence::AnalyzedMessage(message) => Evidence::AnalyzedMessage(message),
            StoredEvidence::Device(device) => Evidence::Device(device),
            StoredEvidence::Url(url) => Evidence::Url(url),
            StoredEvidence::Other { odata_type, common } => Evidence::Other { odata_type, common },
        }
    }
}

impl Evidence {
    /// Reads one evidence object. A malformed object becomes `Other`, so that one
    /// odd field never costs the whole alert.
    fn from_value(value: serde_json::Value) -> Self {
        let odata_type = value
            .get("@odata.type")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let parsed = match odata_type.as_str() {
            USER_EVIDENCE => serde_json::from_value(value.clone()).map(Evidence::User),
            MAILBOX_EVIDENCE => serde_json::from_value(value.clone()).map(Evidence::Mailbox),
            ANALYZED_MESSAGE_EVIDENCE => {
                serde_json::from_value(value.clone()).map(Evidence::AnalyzedMessage)
            }
            DEVICE_EVIDENCE => serde_json::from_value(value.clone()).map(Evidence::Device),
            URL_EVIDENCE => serde_json::from_value(value.clone()).map(Evidence::Url),
            _ => Err(serde::de::Error::custom(
                "evidence kind not read by Gatehouse",
            )),
        };
        parsed.unwrap_or_else(|_| Evidence::Other {
            common: serde_json::from_value(value).unwrap_or_default(),
            odata_type,
        })
    }
}
