using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace BatchScoring.Data.EntityConfigurations;

internal sealed class ModelAliasEntityConfiguration : IEntityTypeConfiguration<ModelAliasEntity>
{
    public void Configure(EntityTypeBuilder<ModelAliasEntity> builder)
    {
        builder.ToTable("model_aliases");
        builder.HasKey(a => new { a.ModelName, a.Alias });
        builder.Property(a => a.ModelName).HasColumnName("model_name");
        builder.Property(a => a.Alias).HasColumnName("alias");
        builder.Property(a => a.Version).HasColumnName("version");
        builder.Property(a => a.UpdatedAt).HasColumnName("updated_at").HasDefaultValueSql("now()");
        builder.HasOne<ModelVersionEntity>().WithMany()
            .HasForeignKey(a => new { a.ModelName, a.Version });
    }
}
