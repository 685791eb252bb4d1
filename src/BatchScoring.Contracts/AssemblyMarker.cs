namespace BatchScoring.Contracts;
internal static class AssemblyMarker;
