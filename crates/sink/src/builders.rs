//! Arrow builders for each dataset kind: rows go in one at a time, a `RecordBatch` of the
//! dataset's schema comes out. Builders are reused between batches (capacity is kept).

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::builder::ArrayBuilder;
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, MapBuilder, MapFieldNames, StringBuilder,
    TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_schema::{ArrowError, SchemaRef};
use logveil_model::{
    AccessRow, AppRow, DatasetKind, ProxyUsageRow, QuarantineRow, SessionRow, SyslogRow, UaFields,
};

/// Turns rows of one kind into record batches.
pub trait RowBuilder: Send + 'static {
    type Row<'a>;
    const KIND: DatasetKind;
    fn with_capacity(rows: usize) -> Self;
    /// Time that decides the row's hour partition (µs since the epoch).
    fn partition_ts(row: &Self::Row<'_>) -> i64;
    fn append(&mut self, row: &Self::Row<'_>);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Takes the rows appended so far as a batch and resets the builder.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError>;
}

fn ts_builder(rows: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC")
}

fn strings(rows: usize, avg: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows * avg)
}

struct UaBuilders {
    browser_family: StringBuilder,
    browser_major: UInt32Builder,
    os_family: StringBuilder,
    os_major: UInt32Builder,
    device_class: StringBuilder,
}

impl UaBuilders {
    fn new(rows: usize) -> Self {
        UaBuilders {
            browser_family: strings(rows, 8),
            browser_major: UInt32Builder::with_capacity(rows),
            os_family: strings(rows, 8),
            os_major: UInt32Builder::with_capacity(rows),
            device_class: strings(rows, 7),
        }
    }

    #[inline]
    fn append(&mut self, ua: &UaFields<'_>) {
        self.browser_family.append_value(ua.browser_family);
        self.browser_major.append_option(ua.browser_major);
        self.os_family.append_value(ua.os_family);
        self.os_major.append_option(ua.os_major);
        self.device_class.append_value(ua.device_class);
    }

    fn finish_into(&mut self, cols: &mut Vec<arrow_array::ArrayRef>) {
        cols.push(Arc::new(self.browser_family.finish()));
        cols.push(Arc::new(self.browser_major.finish()));
        cols.push(Arc::new(self.os_family.finish()));
        cols.push(Arc::new(self.os_major.finish()));
        cols.push(Arc::new(self.device_class.finish()));
    }
}

/// Builder for the `access` dataset.
pub struct AccessBuilder {
    schema: SchemaRef,
    ts: TimestampMicrosecondBuilder,
    ip_pseudonym: StringBuilder,
    ip_network: StringBuilder,
    method: StringBuilder,
    path: StringBuilder,
    protocol: StringBuilder,
    status: UInt16Builder,
    bytes_sent: UInt64Builder,
    referrer_host: StringBuilder,
    ua: UaBuilders,
    key_id: StringBuilder,
    request_time_us: UInt64Builder,
}

impl RowBuilder for AccessBuilder {
    type Row<'a> = AccessRow<'a>;
    const KIND: DatasetKind = DatasetKind::Access;

    fn with_capacity(rows: usize) -> Self {
        AccessBuilder {
            schema: Self::KIND.schema(),
            ts: ts_builder(rows),
            ip_pseudonym: strings(rows, 32),
            ip_network: strings(rows, 16),
            method: strings(rows, 4),
            path: strings(rows, 24),
            protocol: strings(rows, 8),
            status: UInt16Builder::with_capacity(rows),
            bytes_sent: UInt64Builder::with_capacity(rows),
            referrer_host: strings(rows, 20),
            ua: UaBuilders::new(rows),
            key_id: strings(rows, 18),
            request_time_us: UInt64Builder::with_capacity(rows),
        }
    }

    fn partition_ts(row: &AccessRow<'_>) -> i64 {
        row.ts_micros
    }

    #[inline]
    fn append(&mut self, r: &AccessRow<'_>) {
        self.ts.append_value(r.ts_micros);
        self.ip_pseudonym.append_value(r.ip_pseudonym);
        self.ip_network.append_value(r.ip_network);
        self.method.append_option(r.method);
        self.path.append_option(r.path);
        self.protocol.append_option(r.protocol);
        self.status.append_option(r.status);
        self.bytes_sent.append_option(r.bytes_sent);
        self.referrer_host.append_option(r.referrer_host);
        self.ua.append(&r.ua);
        self.key_id.append_value(r.key_id);
        self.request_time_us.append_option(r.request_time_us);
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut cols: Vec<arrow_array::ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.ip_pseudonym.finish()),
            Arc::new(self.ip_network.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.protocol.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.bytes_sent.finish()),
            Arc::new(self.referrer_host.finish()),
        ];
        self.ua.finish_into(&mut cols);
        cols.push(Arc::new(self.key_id.finish()));
        cols.push(Arc::new(self.request_time_us.finish()));
        RecordBatch::try_new(self.schema.clone(), cols)
    }
}

/// Builder for the `session` dataset.
pub struct SessionBuilder {
    schema: SchemaRef,
    ts: TimestampMicrosecondBuilder,
    event: StringBuilder,
    app: StringBuilder,
    app_version: StringBuilder,
    session_pseudonym: StringBuilder,
    device_pseudonym: StringBuilder,
    account_pseudonym: StringBuilder,
    ip_pseudonym: StringBuilder,
    ip_network: StringBuilder,
    page: StringBuilder,
    referrer_host: StringBuilder,
    duration_ms: UInt64Builder,
    locale: StringBuilder,
    consent_preferences: BooleanBuilder,
    consent_statistics: BooleanBuilder,
    consent_marketing: BooleanBuilder,
    marketing: [StringBuilder; 8],
    ua: UaBuilders,
    key_id: StringBuilder,
}

impl RowBuilder for SessionBuilder {
    type Row<'a> = SessionRow<'a>;
    const KIND: DatasetKind = DatasetKind::Session;

    fn with_capacity(rows: usize) -> Self {
        SessionBuilder {
            schema: Self::KIND.schema(),
            ts: ts_builder(rows),
            event: strings(rows, 10),
            app: strings(rows, 6),
            app_version: strings(rows, 6),
            session_pseudonym: strings(rows, 32),
            device_pseudonym: strings(rows, 32),
            account_pseudonym: strings(rows, 32),
            ip_pseudonym: strings(rows, 32),
            ip_network: strings(rows, 16),
            page: strings(rows, 24),
            referrer_host: strings(rows, 20),
            duration_ms: UInt64Builder::with_capacity(rows),
            locale: strings(rows, 5),
            consent_preferences: BooleanBuilder::with_capacity(rows),
            consent_statistics: BooleanBuilder::with_capacity(rows),
            consent_marketing: BooleanBuilder::with_capacity(rows),
            marketing: std::array::from_fn(|_| strings(rows / 4, 8)),
            ua: UaBuilders::new(rows),
            key_id: strings(rows, 18),
        }
    }

    fn partition_ts(row: &SessionRow<'_>) -> i64 {
        row.ts_micros
    }

    #[inline]
    fn append(&mut self, r: &SessionRow<'_>) {
        self.ts.append_value(r.ts_micros);
        self.event.append_value(r.event);
        self.app.append_value(r.app);
        self.app_version.append_option(r.app_version);
        self.session_pseudonym.append_option(r.session_pseudonym);
        self.device_pseudonym.append_option(r.device_pseudonym);
        self.account_pseudonym.append_option(r.account_pseudonym);
        self.ip_pseudonym.append_option(r.ip_pseudonym);
        self.ip_network.append_option(r.ip_network);
        self.page.append_option(r.page);
        self.referrer_host.append_option(r.referrer_host);
        self.duration_ms.append_option(r.duration_ms);
        self.locale.append_option(r.locale);
        self.consent_preferences.append_value(r.consent_preferences);
        self.consent_statistics.append_value(r.consent_statistics);
        self.consent_marketing.append_value(r.consent_marketing);
        for (b, v) in self.marketing.iter_mut().zip(r.marketing.iter()) {
            b.append_option(*v);
        }
        self.ua.append(&r.ua);
        self.key_id.append_value(r.key_id);
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut cols: Vec<arrow_array::ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.event.finish()),
            Arc::new(self.app.finish()),
            Arc::new(self.app_version.finish()),
            Arc::new(self.session_pseudonym.finish()),
            Arc::new(self.device_pseudonym.finish()),
            Arc::new(self.account_pseudonym.finish()),
            Arc::new(self.ip_pseudonym.finish()),
            Arc::new(self.ip_network.finish()),
            Arc::new(self.page.finish()),
            Arc::new(self.referrer_host.finish()),
            Arc::new(self.duration_ms.finish()),
            Arc::new(self.locale.finish()),
            Arc::new(self.consent_preferences.finish()),
            Arc::new(self.consent_statistics.finish()),
            Arc::new(self.consent_marketing.finish()),
        ];
        for b in &mut self.marketing {
            cols.push(Arc::new(b.finish()));
        }
        self.ua.finish_into(&mut cols);
        cols.push(Arc::new(self.key_id.finish()));
        RecordBatch::try_new(self.schema.clone(), cols)
    }
}

/// Builder for the `syslog` dataset.
pub struct SyslogBuilder {
    schema: SchemaRef,
    ts: TimestampMicrosecondBuilder,
    protocol: StringBuilder,
    facility: UInt8Builder,
    severity: UInt8Builder,
    hostname: StringBuilder,
    app_name: StringBuilder,
    proc_id: StringBuilder,
    msg_id: StringBuilder,
    sd_ids: StringBuilder,
    message: StringBuilder,
    key_id: StringBuilder,
}

impl RowBuilder for SyslogBuilder {
    type Row<'a> = SyslogRow<'a>;
    const KIND: DatasetKind = DatasetKind::Syslog;

    fn with_capacity(rows: usize) -> Self {
        SyslogBuilder {
            schema: Self::KIND.schema(),
            ts: ts_builder(rows),
            protocol: strings(rows, 7),
            facility: UInt8Builder::with_capacity(rows),
            severity: UInt8Builder::with_capacity(rows),
            hostname: strings(rows, 12),
            app_name: strings(rows, 8),
            proc_id: strings(rows, 5),
            msg_id: strings(rows, 4),
            sd_ids: strings(rows, 4),
            message: strings(rows, 80),
            key_id: strings(rows, 18),
        }
    }

    fn partition_ts(row: &SyslogRow<'_>) -> i64 {
        row.ts_micros
    }

    #[inline]
    fn append(&mut self, r: &SyslogRow<'_>) {
        self.ts.append_value(r.ts_micros);
        self.protocol.append_value(r.protocol);
        self.facility.append_option(r.facility);
        self.severity.append_option(r.severity);
        self.hostname.append_option(r.hostname);
        self.app_name.append_option(r.app_name);
        self.proc_id.append_option(r.proc_id);
        self.msg_id.append_option(r.msg_id);
        self.sd_ids.append_option(r.sd_ids);
        self.message.append_value(r.message);
        self.key_id.append_value(r.key_id);
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let cols: Vec<arrow_array::ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.protocol.finish()),
            Arc::new(self.facility.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.hostname.finish()),
            Arc::new(self.app_name.finish()),
            Arc::new(self.proc_id.finish()),
            Arc::new(self.msg_id.finish()),
            Arc::new(self.sd_ids.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.key_id.finish()),
        ];
        RecordBatch::try_new(self.schema.clone(), cols)
    }
}

/// Builder for the `app` dataset.
pub struct AppBuilder {
    schema: SchemaRef,
    ts: TimestampMicrosecondBuilder,
    app: StringBuilder,
    level: StringBuilder,
    message: StringBuilder,
    ip_pseudonym: StringBuilder,
    ip_network: StringBuilder,
    device_pseudonym: StringBuilder,
    account_pseudonym: StringBuilder,
    method: StringBuilder,
    path: StringBuilder,
    status: UInt16Builder,
    duration_ms: Float64Builder,
    ua: UaBuilders,
    attributes: MapBuilder<StringBuilder, StringBuilder>,
    key_id: StringBuilder,
}

impl RowBuilder for AppBuilder {
    type Row<'a> = AppRow<'a>;
    const KIND: DatasetKind = DatasetKind::App;

    fn with_capacity(rows: usize) -> Self {
        let names = MapFieldNames {
            entry: "entries".into(),
            key: "keys".into(),
            value: "values".into(),
        };
        AppBuilder {
            schema: Self::KIND.schema(),
            ts: ts_builder(rows),
            app: strings(rows, 8),
            level: strings(rows, 5),
            message: strings(rows, 60),
            ip_pseudonym: strings(rows, 32),
            ip_network: strings(rows, 16),
            device_pseudonym: strings(rows, 32),
            account_pseudonym: strings(rows, 32),
            method: strings(rows, 4),
            path: strings(rows, 24),
            status: UInt16Builder::with_capacity(rows),
            duration_ms: Float64Builder::with_capacity(rows),
            ua: UaBuilders::new(rows),
            attributes: MapBuilder::new(Some(names), strings(rows, 8), strings(rows, 16)),
            key_id: strings(rows, 18),
        }
    }

    fn partition_ts(row: &AppRow<'_>) -> i64 {
        row.ts_micros
    }

    #[inline]
    fn append(&mut self, r: &AppRow<'_>) {
        self.ts.append_value(r.ts_micros);
        self.app.append_value(r.app);
        self.level.append_option(r.level);
        self.message.append_option(r.message);
        self.ip_pseudonym.append_option(r.ip_pseudonym);
        self.ip_network.append_option(r.ip_network);
        self.device_pseudonym.append_option(r.device_pseudonym);
        self.account_pseudonym.append_option(r.account_pseudonym);
        self.method.append_option(r.method);
        self.path.append_option(r.path);
        self.status.append_option(r.status);
        self.duration_ms.append_option(r.duration_ms);
        self.ua.append(&r.ua);
        let mut any = false;
        for (name, value) in r.attribute_names.iter().zip(r.attribute_values) {
            if let Some(v) = value {
                self.attributes.keys().append_value(name);
                self.attributes.values().append_value(v);
                any = true;
            }
        }
        // A map is null when nothing was kept; MapBuilder::append only fails on a key/value
        // count mismatch, which the loop above rules out.
        let _ = self.attributes.append(any);
        self.key_id.append_value(r.key_id);
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut cols: Vec<arrow_array::ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.app.finish()),
            Arc::new(self.level.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.ip_pseudonym.finish()),
            Arc::new(self.ip_network.finish()),
            Arc::new(self.device_pseudonym.finish()),
            Arc::new(self.account_pseudonym.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.duration_ms.finish()),
        ];
        self.ua.finish_into(&mut cols);
        cols.push(Arc::new(self.attributes.finish()));
        cols.push(Arc::new(self.key_id.finish()));
        RecordBatch::try_new(self.schema.clone(), cols)
    }
}

/// Builder for the `proxy_usage` dataset (partitioned by window start).
pub struct ProxyUsageBuilder {
    schema: SchemaRef,
    window_start: TimestampMicrosecondBuilder,
    window_seconds: UInt32Builder,
    account_pseudonym: StringBuilder,
    ip_network: StringBuilder,
    status_class: StringBuilder,
    requests: UInt64Builder,
    bytes_in: UInt64Builder,
    bytes_out: UInt64Builder,
    duration_ms_sum: UInt64Builder,
    duration_ms_max: UInt64Builder,
    key_id: StringBuilder,
}

impl RowBuilder for ProxyUsageBuilder {
    type Row<'a> = ProxyUsageRow<'a>;
    const KIND: DatasetKind = DatasetKind::ProxyUsage;

    fn with_capacity(rows: usize) -> Self {
        let rows = rows.min(16 * 1024);
        ProxyUsageBuilder {
            schema: Self::KIND.schema(),
            window_start: ts_builder(rows),
            window_seconds: UInt32Builder::with_capacity(rows),
            account_pseudonym: strings(rows, 32),
            ip_network: strings(rows, 16),
            status_class: strings(rows, 3),
            requests: UInt64Builder::with_capacity(rows),
            bytes_in: UInt64Builder::with_capacity(rows),
            bytes_out: UInt64Builder::with_capacity(rows),
            duration_ms_sum: UInt64Builder::with_capacity(rows),
            duration_ms_max: UInt64Builder::with_capacity(rows),
            key_id: strings(rows, 18),
        }
    }

    fn partition_ts(row: &ProxyUsageRow<'_>) -> i64 {
        row.window_start_micros
    }

    fn append(&mut self, r: &ProxyUsageRow<'_>) {
        self.window_start.append_value(r.window_start_micros);
        self.window_seconds.append_value(r.window_seconds);
        self.account_pseudonym.append_option(r.account_pseudonym);
        self.ip_network.append_value(r.ip_network);
        self.status_class.append_value(r.status_class);
        self.requests.append_value(r.requests);
        self.bytes_in.append_value(r.bytes_in);
        self.bytes_out.append_value(r.bytes_out);
        self.duration_ms_sum.append_value(r.duration_ms_sum);
        self.duration_ms_max.append_value(r.duration_ms_max);
        self.key_id.append_value(r.key_id);
    }

    fn len(&self) -> usize {
        self.window_start.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let cols: Vec<arrow_array::ArrayRef> = vec![
            Arc::new(self.window_start.finish()),
            Arc::new(self.window_seconds.finish()),
            Arc::new(self.account_pseudonym.finish()),
            Arc::new(self.ip_network.finish()),
            Arc::new(self.status_class.finish()),
            Arc::new(self.requests.finish()),
            Arc::new(self.bytes_in.finish()),
            Arc::new(self.bytes_out.finish()),
            Arc::new(self.duration_ms_sum.finish()),
            Arc::new(self.duration_ms_max.finish()),
            Arc::new(self.key_id.finish()),
        ];
        RecordBatch::try_new(self.schema.clone(), cols)
    }
}

/// Builder for the `_quarantine` dataset (partitioned by ingestion time).
pub struct QuarantineBuilder {
    schema: SchemaRef,
    ingested_at: TimestampMicrosecondBuilder,
    dataset: StringBuilder,
    source: StringBuilder,
    line_number: UInt64Builder,
    byte_offset: UInt64Builder,
    reason: StringBuilder,
    detail: StringBuilder,
    line: StringBuilder,
}

impl RowBuilder for QuarantineBuilder {
    type Row<'a> = QuarantineRow<'a>;
    const KIND: DatasetKind = DatasetKind::Quarantine;

    fn with_capacity(rows: usize) -> Self {
        let rows = rows.min(4096);
        QuarantineBuilder {
            schema: Self::KIND.schema(),
            ingested_at: ts_builder(rows),
            dataset: strings(rows, 8),
            source: strings(rows, 24),
            line_number: UInt64Builder::with_capacity(rows),
            byte_offset: UInt64Builder::with_capacity(rows),
            reason: strings(rows, 12),
            detail: strings(rows, 32),
            line: strings(rows, 128),
        }
    }

    fn partition_ts(row: &QuarantineRow<'_>) -> i64 {
        row.ingested_at_micros
    }

    fn append(&mut self, r: &QuarantineRow<'_>) {
        self.ingested_at.append_value(r.ingested_at_micros);
        self.dataset.append_value(r.dataset);
        self.source.append_value(r.source);
        self.line_number.append_value(r.line_number);
        self.byte_offset.append_value(r.byte_offset);
        self.reason.append_value(r.reason);
        self.detail.append_value(r.detail);
        self.line.append_value(r.line);
    }

    fn len(&self) -> usize {
        self.ingested_at.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let cols: Vec<arrow_array::ArrayRef> = vec![
            Arc::new(self.ingested_at.finish()),
            Arc::new(self.dataset.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.line_number.finish()),
            Arc::new(self.byte_offset.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.detail.finish()),
            Arc::new(self.line.finish()),
        ];
        RecordBatch::try_new(self.schema.clone(), cols)
    }
}
