// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Multicall3Lite
/// @notice The one Multicall3 function x402's EVM facilitator uses, `tryAggregate`, with the same
/// selector and ABI. Tests place its runtime code at Multicall3's canonical address
/// (0xcA11bde05977b3631167028862bE2a173976CA11) on a local chain, so that the facilitator can read
/// why a transfer would fail (nonce used, balance too low) instead of reporting a bare failure.
contract Multicall3Lite {
    struct Call {
        address target;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    function tryAggregate(bool requireSuccess, Call[] calldata calls)
        external
        payable
        returns (Result[] memory returnData)
    {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool success, bytes memory data) = calls[i].target.call(calls[i].callData);
            require(success || !requireSuccess, "Multicall3: call failed");
            returnData[i] = Result(success, data);
        }
    }
}
