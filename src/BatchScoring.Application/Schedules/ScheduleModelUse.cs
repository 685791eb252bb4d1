using Quartz;

namespace BatchScoring.Application.Schedules;

/// <summary>
/// Schedules that name a version by number (<c>churn@3</c>) use it: the registry refuses to delete it. A schedule on an
/// alias or on the latest version resolves at each fire, so it pins no version.
/// </summary>
public sealed class ScheduleModelUse(QuartzStore schedulers) : IModelVersionUse
{
    public async Task<IReadOnlyList<string>> FindAsync(string modelName, int version, CancellationToken cancellationToken)
    {
        var scheduler = await schedulers.GetSchedulerAsync(cancellationToken);
        var uses = new List<string>();
        foreach (var key in await scheduler.GetJobKeys(GroupMatcher<JobKey>.GroupStartsWith(ScheduleDefinition.GroupPrefix), cancellationToken))
        {
            if (await scheduler.GetJobDetail(key, cancellationToken) is not { } detail)
            {
                continue; // deleted in the meantime
            }

            var job = ScheduleDefinition.FromJobData(detail.JobDataMap).Job;
            if (string.Equals(job.Model, modelName, StringComparison.Ordinal)
                && (job.ModelVersion == version.ToString(System.Globalization.CultureInfo.InvariantCulture)
                    || job.Challenger == $"{modelName}@{version}"))
            {
                uses.Add($"schedule '{key.Name}'");
            }
        }

        return uses;
    }
}
