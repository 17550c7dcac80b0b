namespace Marginal.Gateway.Routing.Learning;

/// <summary>Routing data that cannot be read; the message is one line naming the file and the fault.</summary>
public sealed class RoutingDataException(string message) : Exception(message);
