namespace Marginal.Local;

/// <summary>The configured backend cannot run here; the message is one line naming the setting and what it needs.</summary>
public sealed class LocalBackendUnavailableException : Exception
{
    public LocalBackendUnavailableException()
    {
    }

    public LocalBackendUnavailableException(string message)
        : base(message)
    {
    }

    public LocalBackendUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
