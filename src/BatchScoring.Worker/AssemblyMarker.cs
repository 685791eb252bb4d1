namespace BatchScoring.Worker;
internal static class AssemblyMarker;
