using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace BatchScoring.Data.EntityConfigurations;

internal sealed class FailedRowEntityConfiguration : IEntityTypeConfiguration<FailedRowEntity>
{
    public void Configure(EntityTypeBuilder<FailedRowEntity> builder)
    {
        builder.ToTable("failed_rows");
        builder.HasKey(f => f.Id);
        builder.Property(f => f.Id).HasColumnName("id").UseIdentityAlwaysColumn();
        builder.Property(f => f.JobId).HasColumnName("job_id");
        builder.Property(f => f.RequestId).HasColumnName("request_id");
        builder.Property(f => f.ChunkIndex).HasColumnName("chunk_index");
        builder.Property(f => f.RowNumber).HasColumnName("row_number");
        builder.Property(f => f.RowKey).HasColumnName("row_key");
        builder.Property(f => f.RowKeyJson).HasColumnName("row_key_json").HasColumnType("jsonb");
        builder.Property(f => f.ColumnName).HasColumnName("column_name");
        builder.Property(f => f.Reason).HasColumnName("reason");
        builder.Property(f => f.RecordedAt).HasColumnName("recorded_at").HasDefaultValueSql("now()");
        builder.HasIndex(f => new { f.JobId, f.ChunkIndex });
    }
}
