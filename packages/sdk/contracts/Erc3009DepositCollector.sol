// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

interface IERC3009Receive {
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;
    function transfer(address to, uint256 value) external returns (bool);
}

/// @title Erc3009DepositCollector
/// @notice Tollway's local-chain stand-in for x402's `ERC3009DepositCollector`: pulls a deposit
/// into the batch-settlement contract with the payer's EIP-3009 `ReceiveWithAuthorization`
/// (`to` = this collector, nonce = keccak256(abi.encode(channelId, salt))), then forwards it.
/// Only the batch contract it was built for may call it. Tests place its runtime code at the
/// canonical address (0x4020806089470a89826cB9fB1f4059150b550004), built with the batch contract's
/// canonical address as its constructor argument. Not for production.
contract Erc3009DepositCollector {
    address public immutable x402BatchSettlement;

    error InvalidX402BatchSettlementAddress();
    error OnlyX402BatchSettlement();
    error TransferFailed();

    constructor(address batchSettlement) {
        if (batchSettlement == address(0)) revert InvalidX402BatchSettlementAddress();
        x402BatchSettlement = batchSettlement;
    }

    /// `data` is `abi.encode(validAfter, validBefore, salt, signature)`.
    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata data) external {
        if (msg.sender != x402BatchSettlement) revert OnlyX402BatchSettlement();
        (uint256 validAfter, uint256 validBefore, uint256 salt, bytes memory signature) =
            abi.decode(data, (uint256, uint256, uint256, bytes));
        IERC3009Receive(token).receiveWithAuthorization(
            payer, address(this), amount, validAfter, validBefore, keccak256(abi.encode(channelId, salt)), signature
        );
        if (!IERC3009Receive(token).transfer(x402BatchSettlement, amount)) revert TransferFailed();
    }
}
