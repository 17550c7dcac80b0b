namespace Marginal.Gateway.Configuration;

/// <summary>
/// A configuration file that cannot be used. <see cref="Exception.Message"/> is one line naming
/// the file, the key and what is allowed, ready to print.
/// </summary>
public sealed class ConfigException : Exception
{
    public ConfigException()
    {
    }

    public ConfigException(string message)
        : base(message)
    {
    }

    public ConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
