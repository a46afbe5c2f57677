//! `safeguard import PATH --grpc URL`: the file streamed to a running server's `ImportSellers`, as a
//! remote client would load it, instead of written to the database directly. The same reader
//! runs on a blocking thread; rows that cannot be read are reported locally by line, the rest are
//! sent in one stream, and the server's per-item errors come back by index and are mapped to lines.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use super::convert::{pb_attestation_input, pb_seller_input};
use crate::cli::Record;
use crate::cli::import::{
    Chunk, ImportOptions, ImportReport, Parsers, Reader, RowError, open, progress_bar, spawn_reader,
};
use crate::cli::read::{json_request, request};
use crate::pb::v1 as pb;
use crate::pb::v1::registry_service_client::RegistryServiceClient;

/// Streams `path` to the `ImportSellers` of the server at `endpoint` (`http://host:port`),
/// authenticated with `token` (a legal or admin bearer token).
pub async fn import_grpc(
    endpoint: &str,
    token: Option<&str>,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let (format, file, size) = open(path, options)?;
    let channel = Channel::from_shared(endpoint.to_owned())
        .with_context(|| format!("{endpoint} is not a valid endpoint"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    let bearer = token
        .map(|t| format!("Bearer {t}").parse::<MetadataValue<_>>())
        .transpose()
        .context("the token is not a valid header value")?;
    let mut client = RegistryServiceClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        if let Some(v) = &bearer {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    })
    .max_decoding_message_size(64 * 1024 * 1024);
    let started = Instant::now();
    let bar = progress_bar(options.progress, size);

    let (chunks_tx, mut chunks) = mpsc::channel::<Chunk<Record>>(2);
    let reader = Reader::new(chunks_tx, options.batch_size, Parsers { csv: |row| request(row), json: json_request });
    let reading = spawn_reader(reader, format, file, path);

    // Unpacks chunks into the request stream, keeping each item's line for the server's errors.
    let (items_tx, items) = mpsc::channel::<pb::ImportSellersRequest>(options.batch_size.max(1));
    let forwarding = tokio::spawn(async move {
        let mut local = ImportReport::default();
        let mut lines = Vec::new();
        while let Some(chunk) = chunks.recv().await {
            local.rows += chunk.rows;
            local.errors.extend(chunk.errors);
            lines.extend(chunk.lines);
            bar.set_position(chunk.bytes);
            for (_, record) in chunk.items {
                let item = match record {
                    Record::Seller(s) => pb::import_sellers_request::Item::Seller(pb_seller_input(s)),
                    Record::Attestation(a) => pb::import_sellers_request::Item::Attestation(pb_attestation_input(a)),
                };
                let item = pb::ImportSellersRequest { item: Some(item) };
                // The server ended the stream (an error): stop reading, the status says why.
                if items_tx.send(item).await.is_err() {
                    return (local, lines, bar);
                }
            }
        }
        (local, lines, bar)
    });

    let response = client.import_sellers(ReceiverStream::new(items)).await;
    let (mut report, lines, bar) = forwarding.await.context("the reading task failed")?;
    bar.finish_and_clear();
    let response = response.map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?.into_inner();
    reading.await.context("the reading thread failed")??;

    report.sellers_created = response.sellers_created;
    report.sellers_updated = response.sellers_updated;
    report.sellers_unchanged = response.sellers_unchanged;
    report.attestations_created = response.attestations_created;
    report.attestations_unchanged = response.attestations_unchanged;
    report.revision = response.revision;
    report.errors_unlisted = response.errors_total - response.errors.len() as i64;
    for e in response.errors {
        let line = usize::try_from(e.index).ok().and_then(|i| lines.get(i)).copied().unwrap_or(0);
        // The server names fields as the API does (`seller.country`); the file has columns.
        let field = e.field.split_once('.').map_or(e.field.as_str(), |(_, f)| f).to_owned();
        report.errors.push(RowError { line, field, message: e.message });
    }
    report.errors.sort_by_key(|e| e.line);
    report.elapsed = started.elapsed();
    Ok(report)
}
