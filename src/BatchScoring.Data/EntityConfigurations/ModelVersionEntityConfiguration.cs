using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace BatchScoring.Data.EntityConfigurations;

internal sealed class ModelVersionEntityConfiguration : IEntityTypeConfiguration<ModelVersionEntity>
{
    public void Configure(EntityTypeBuilder<ModelVersionEntity> builder)
    {
        builder.ToTable("model_versions");
        builder.HasKey(m => new { m.ModelName, m.Version });
        builder.Property(m => m.ModelName).HasColumnName("model_name");
        builder.Property(m => m.Version).HasColumnName("version").ValueGeneratedNever();
        builder.Property(m => m.Tenant).HasColumnName("tenant");
        builder.Property(m => m.Sha256).HasColumnName("sha256");
        builder.Property(m => m.StoragePath).HasColumnName("storage_path");
        builder.Property(m => m.Signature).HasColumnName("signature").HasColumnType("jsonb");
        builder.Property(m => m.CreatedAt).HasColumnName("created_at").HasDefaultValueSql("now()");
        builder.Property(m => m.ArchivedAt).HasColumnName("archived_at");
        builder.Property(m => m.ArchivedBy).HasColumnName("archived_by");
    }
}
