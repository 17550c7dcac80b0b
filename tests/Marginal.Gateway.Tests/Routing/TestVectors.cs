namespace Marginal.Gateway.Tests.Routing;

internal static class TestVectors
{
    /// <summary>A 384-d unit vector along <paramref name="axis"/>: orthogonal prompts, so similarities are 0 or 1.</summary>
    public static float[] Unit(int axis)
    {
        var v = new float[384];
        v[axis] = 1;
        return v;
    }
}
