using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace BatchScoring.Data.EntityConfigurations;

internal sealed class JobEntityConfiguration : IEntityTypeConfiguration<JobEntity>
{
    public void Configure(EntityTypeBuilder<JobEntity> builder)
    {
        builder.ToTable("jobs");
        builder.HasKey(j => j.Id);
        builder.Property(j => j.Id).HasColumnName("id").ValueGeneratedNever();
        builder.Property(j => j.Tenant).HasColumnName("tenant");
        builder.Property(j => j.RequestSha256).HasColumnName("request_sha256");
        builder.Property(j => j.IdempotencyKey).HasColumnName("idempotency_key");
        builder.HasIndex(j => new { j.Tenant, j.IdempotencyKey }).IsUnique();
        builder.Property(j => j.State).HasColumnName("state")
            .HasConversion(s => StateText.ToDb(s), s => StateText.ParseJobState(s));
        builder.Property(j => j.ModelName).HasColumnName("model_name");
        builder.Property(j => j.ModelVersion).HasColumnName("model_version");
        builder.Property(j => j.ModelSha256).HasColumnName("model_sha256");
        builder.Property(j => j.InputUri).HasColumnName("input_uri");
        builder.Property(j => j.InputFormat).HasColumnName("input_format");
        builder.Property(j => j.KeyColumn).HasColumnName("key_column");
        builder.Property(j => j.PassthroughColumns).HasColumnName("passthrough_columns").HasColumnType("text[]");
        builder.Property(j => j.FeatureColumns).HasColumnName("feature_columns").HasColumnType("text[]");
        builder.Property(j => j.OutputTable).HasColumnName("output_table");
        builder.Property(j => j.OutputParquet).HasColumnName("output_parquet");
        builder.Property(j => j.Plan).HasColumnName("plan").HasColumnType("jsonb");
        builder.Property(j => j.BatchSize).HasColumnName("batch_size");
        builder.Property(j => j.ChunkSize).HasColumnName("chunk_size");
        builder.Property(j => j.AllowNonFinite).HasColumnName("allow_non_finite");
        builder.Property(j => j.ErrorThresholdRows).HasColumnName("error_threshold_rows");
        builder.Property(j => j.ErrorThresholdPercent).HasColumnName("error_threshold_percent");
        builder.Property(j => j.TotalRows).HasColumnName("total_rows");
        builder.Property(j => j.ScoredRows).HasColumnName("scored_rows");
        builder.Property(j => j.FailedRows).HasColumnName("failed_rows");
        builder.Property(j => j.ChunksTotal).HasColumnName("chunks_total");
        builder.Property(j => j.ChunksDone).HasColumnName("chunks_done");
        builder.Property(j => j.ChunksFailed).HasColumnName("chunks_failed");
        builder.Property(j => j.Error).HasColumnName("error");
        builder.Property(j => j.CreatedAt).HasColumnName("created_at").HasDefaultValueSql("now()");
        builder.Property(j => j.StartedAt).HasColumnName("started_at");
        builder.Property(j => j.FinishedAt).HasColumnName("finished_at");
        builder.Property(j => j.UpdatedAt).HasColumnName("updated_at").HasDefaultValueSql("now()");
        builder.Property(j => j.Retries).HasColumnName("retries");
        builder.Property(j => j.EndedEventSentAt).HasColumnName("ended_event_sent_at");
        builder.HasIndex(j => new { j.State, j.CreatedAt });
        builder.HasMany<ChunkEntity>().WithOne().HasForeignKey(c => c.JobId);
    }
}
