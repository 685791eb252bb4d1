using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace BatchScoring.Data;

/// <summary>
/// EF Core view of the <c>scoring</c> schema. The schema itself is owned by the SQL migrations in
/// <c>schemas/sql</c> (see <see cref="DatabaseMigrator"/>); do not use EF migrations or EnsureCreated.
/// Result rows are written with binary COPY (<see cref="ResultTable"/>), not through EF.
/// </summary>
/// <remarks>
/// There is deliberately no <c>dotnet ef migrations add</c> step: to change the schema, add a file
/// <c>schemas/sql/NNN_name.sql</c> (embedded automatically) and update the matching configuration in
/// <c>EntityConfigurations/</c>; the integration tests check that every entity round-trips.
/// </remarks>
public sealed class ScoringDbContext(DbContextOptions<ScoringDbContext> options) : DbContext(options)
{
    public const string Schema = "scoring";

    public DbSet<JobEntity> Jobs => Set<JobEntity>();

    public DbSet<ChunkEntity> Chunks => Set<ChunkEntity>();

    public DbSet<ModelVersionEntity> ModelVersions => Set<ModelVersionEntity>();

    public DbSet<ModelAliasEntity> ModelAliases => Set<ModelAliasEntity>();

    public DbSet<FailedRowEntity> FailedRows => Set<FailedRowEntity>();

    /// <summary>Options for a context over <paramref name="dataSource"/>; build once and reuse.</summary>
    public static DbContextOptions<ScoringDbContext> CreateOptions(NpgsqlDataSource dataSource)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        return new DbContextOptionsBuilder<ScoringDbContext>()
            .UseNpgsql(dataSource)
            .Options;
    }

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.HasDefaultSchema(Schema);
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(ScoringDbContext).Assembly);
    }
}
