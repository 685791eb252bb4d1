using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace BatchScoring.Data.EntityConfigurations;

internal sealed class ChunkEntityConfiguration : IEntityTypeConfiguration<ChunkEntity>
{
    public void Configure(EntityTypeBuilder<ChunkEntity> builder)
    {
        builder.ToTable("chunks");
        builder.HasKey(c => new { c.JobId, c.ChunkIndex });
        builder.Property(c => c.JobId).HasColumnName("job_id");
        builder.Property(c => c.ChunkIndex).HasColumnName("chunk_index").ValueGeneratedNever();
        builder.Property(c => c.SourcePath).HasColumnName("source_path");
        builder.Property(c => c.RowGroup).HasColumnName("row_group");
        builder.Property(c => c.RowStart).HasColumnName("row_start");
        builder.Property(c => c.RowCount).HasColumnName("row_count");
        builder.Property(c => c.ByteOffset).HasColumnName("byte_offset");
        builder.Property(c => c.Ranges).HasColumnName("ranges").HasColumnType("jsonb");
        builder.Property(c => c.State).HasColumnName("state")
            .HasConversion(s => StateText.ToDb(s), s => StateText.ParseChunkState(s));
        builder.Property(c => c.Attempts).HasColumnName("attempts");
        builder.Property(c => c.ScoredRows).HasColumnName("scored_rows");
        builder.Property(c => c.FailedRows).HasColumnName("failed_rows");
        builder.Property(c => c.Worker).HasColumnName("worker");
        builder.Property(c => c.Error).HasColumnName("error");
        builder.Property(c => c.StartedAt).HasColumnName("started_at");
        builder.Property(c => c.FinishedAt).HasColumnName("finished_at");
        builder.Property(c => c.Sends).HasColumnName("sends");
        builder.Property(c => c.SentAt).HasColumnName("sent_at");
        builder.Property(c => c.OpenAttempts).HasColumnName("open_attempts");
        builder.Property(c => c.Failures).HasColumnName("failures");
        builder.Property(c => c.FirstFailedAt).HasColumnName("first_failed_at");
        builder.Property(c => c.LastError).HasColumnName("last_error");
        builder.Property(c => c.NextAttemptAt).HasColumnName("next_attempt_at");
    }
}
