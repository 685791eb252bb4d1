namespace BatchScoring.Data;
internal static class AssemblyMarker;
