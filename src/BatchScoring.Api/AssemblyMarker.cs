namespace BatchScoring.Api;
internal static class AssemblyMarker;
